"""The machine and software a run used, recorded with its results so a report can say where numbers came from."""

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

import torch

PACKAGES = ("vitswin", "torch", "torchvision", "timm", "lightning", "torchmetrics", "grad-cam", "numpy")


def describe_environment() -> dict[str, str]:
    """Hardware and software versions of this process, as display strings."""
    description = {
        "cpu": f"{_cpu_name()} ({os.cpu_count()} logical cores)",
        "gpu": ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "none",
        "os": platform.platform(terse=True),
        "python": sys.version.split()[0],
    }
    for package in PACKAGES:
        try:
            description[package] = version(package)
        except PackageNotFoundError:
            description[package] = "not installed"
    return description


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
