"""devices.deterministic_on_cpu: deterministic kernels without the NaN fill of new memory, restored after."""

import torch

from justrl.train.devices import deterministic_on_cpu


def test_deterministic_on_cpu_skips_the_nan_fill_and_restores_both_settings():
    fill_before = torch.utils.deterministic.fill_uninitialized_memory
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    with deterministic_on_cpu(torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory is False
        a = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
        assert torch.equal(a @ a, a @ a)
    assert torch.utils.deterministic.fill_uninitialized_memory == fill_before
    assert torch.are_deterministic_algorithms_enabled() == deterministic_before


def test_deterministic_on_cpu_changes_nothing_on_another_device_type():
    fill_before = torch.utils.deterministic.fill_uninitialized_memory
    with deterministic_on_cpu(torch.device("meta")):
        assert torch.utils.deterministic.fill_uninitialized_memory == fill_before
