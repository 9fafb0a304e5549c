"""PyTorch models batched over chains, data generators and trainers: deep linear networks, the
toy model of superposition, polynomial potentials, the tanh network, any ``nn.Module`` through
``torch.func``, and the modular-addition network of the grokking study."""

from sltlab.models.deep_linear import (DeepLinearNetwork, FullDataLoss, PopulationLoss, balanced_factorization,
                                       orthonormal_frame, regression_data, sufficient_statistics,
                                       teacher_matrix)
from sltlab.models.functional import FunctionalModel, cross_entropy, gaussian_nll
from sltlab.models.modular import (AdamWConfig, ModularAdditionNetwork, ModularRun, ModularSplit,
                                   modular_addition_split, train_modular)
from sltlab.models.potential import Potential
from sltlab.models.tanh_network import TanhNetwork, null_regression_data
from sltlab.models.tms import ToyModelOfSuperposition
from sltlab.models.training import TrainingRun, balanced_initialization, numerical_rank, train_deep_linear

__all__ = ["DeepLinearNetwork", "FullDataLoss", "PopulationLoss", "balanced_factorization", "orthonormal_frame",
           "regression_data", "sufficient_statistics", "teacher_matrix", "FunctionalModel", "cross_entropy", "gaussian_nll", "AdamWConfig",
           "ModularAdditionNetwork", "ModularRun", "ModularSplit", "modular_addition_split", "train_modular",
           "Potential", "TanhNetwork",
           "null_regression_data", "ToyModelOfSuperposition", "TrainingRun", "balanced_initialization",
           "numerical_rank", "train_deep_linear"]
