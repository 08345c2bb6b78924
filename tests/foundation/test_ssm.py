import torch

from matfuse.foundation.ssm import MambaStack, ssd_dual, ssd_recurrent


def test_dual_form_equals_recurrence():
    g = torch.Generator().manual_seed(0)
    b, length, h, p, n = 3, 9, 2, 4, 5
    x = torch.randn(b, length, h, p, generator=g)
    dt = torch.rand(b, length, h, generator=g)
    a = -3 * torch.rand(h, generator=g)
    B, C = torch.randn(b, length, n, generator=g), torch.randn(b, length, n, generator=g)
    torch.testing.assert_close(ssd_dual(x, dt, a, B, C), ssd_recurrent(x, dt, a, B, C))


def test_padding_does_not_change_real_positions():
    torch.manual_seed(0)
    stack = MambaStack(16, n_layers=2).eval()
    x = torch.randn(1, 5, 16)
    padded = torch.cat([x, torch.randn(1, 3, 16)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    out_short = stack(x, torch.ones(1, 5, dtype=torch.bool))
    out_padded = stack(padded, mask)
    torch.testing.assert_close(out_short, out_padded[:, :5], atol=1e-5, rtol=1e-4)


def test_bidirectional_stack_sees_both_sides():
    torch.manual_seed(0)
    stack = MambaStack(8, n_layers=2).eval()
    x = torch.randn(1, 6, 8)
    mask = torch.ones(1, 6, dtype=torch.bool)
    changed = x.clone()
    changed[0, -1] = torch.randn(8)  # change only the last token
    delta = (stack(x, mask) - stack(changed, mask)).abs().sum(-1)
    assert delta[0, 0] > 1e-4  # the first position felt it (through the reversed layer)
