import time

import pytest

from workbench.devices import CpuInfo, DeviceReport, GpuInfo, choose_precision, detect_devices

GiB = 2**30


def cpu(flags=()):
    return CpuInfo("cpu", 2, 24 * GiB, 20 * GiB, frozenset(flags))


def gpu(capability):
    return GpuInfo(0, "gpu", 24 * GiB, 20 * GiB, capability)


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (DeviceReport(cpu(["avx2", "avx512f"])), "fp32"),
        (DeviceReport(cpu(["avx512_bf16"])), "bf16"),
        (DeviceReport(cpu(["amx_bf16"])), "bf16"),
        (DeviceReport(cpu(), (gpu((8, 0)),)), "bf16"),
        (DeviceReport(cpu(), (gpu((7, 5)),)), "fp16"),
        (DeviceReport(cpu(), (gpu((8, 6)), gpu((7, 0)))), "fp16"),
    ],
)
def test_auto_precision_follows_native_hardware_support(report, expected):
    assert choose_precision("auto", report) == expected


def test_explicit_precision_is_kept_and_unknown_is_refused():
    report = DeviceReport(cpu())
    assert choose_precision("bf16", report) == "bf16"
    with pytest.raises(ValueError, match="unknown precision"):
        choose_precision("int3", report)


def test_cpu_training_ignores_gpus_when_asked():
    report = DeviceReport(cpu(), (gpu((8, 0)),))
    assert choose_precision("auto", report, use_gpu=False) == "fp32"


def _matmul_gflops(dtype) -> float:
    import torch

    a = torch.randn(512, 512, dtype=dtype)
    b = torch.randn(512, 512, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 512**3 / best / 1e9


def test_auto_precision_on_this_machine_matches_measured_bf16_speed():
    """Pins the decision on real hardware: on CPUs where bf16 matmul is emulated (measured 400x
    slower than fp32 on some hosts of this kind), "auto" must choose fp32."""
    report = detect_devices()
    if report.has_cuda:
        pytest.skip("GPU host: the CPU rule does not apply")
    fp32, bf16 = _matmul_gflops(__import__("torch").float32), _matmul_gflops(__import__("torch").bfloat16)
    decision = choose_precision("auto", report)
    if bf16 < 0.5 * fp32:
        assert decision == "fp32", f"bf16 runs at {bf16:.1f} GFLOP/s vs fp32 {fp32:.1f}; auto must not pick bf16"
    if decision == "bf16":
        assert bf16 >= 0.5 * fp32


def test_device_summary_names_the_hardware():
    assert "CPU" in DeviceReport(cpu()).summary()
    two = DeviceReport(cpu(), (GpuInfo(0, "NVIDIA H100", 80 * GiB, 79 * GiB, (9, 0)), GpuInfo(1, "NVIDIA H100", 80 * GiB, 79 * GiB, (9, 0))))
    assert two.summary().startswith("2× NVIDIA H100")
