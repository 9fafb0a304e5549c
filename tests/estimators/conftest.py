"""Data the estimator tests share."""

import pytest
import torch


@pytest.fixture(scope="session")
def fitted_by_least_squares():
    """A function of (module, input scales, coefficients): y = x·coefficients + N(0, 1) on 2,000 rows
    of inputs of those scales (float64, seed 0), and the module with its parameters, in order, set to
    the rows of the least-squares fit; it gives (module, (x, y))."""
    def fit(module: torch.nn.Module, scales: list[float], coefficients: list[float]):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(2000, len(scales), generator=generator, dtype=torch.float64) * torch.tensor(scales)
        y = x @ torch.tensor(coefficients, dtype=torch.float64).unsqueeze(1) + torch.randn(
            2000, 1, generator=generator, dtype=torch.float64)
        solution, start = torch.linalg.lstsq(x, y).solution, 0
        with torch.no_grad():
            for weight in module.parameters():
                weight.copy_(solution[start:start + weight.numel()].T.reshape(weight.shape))
                start += weight.numel()
        return module, (x, y)
    return fit
