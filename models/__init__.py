"""PyTorch models batched over chains, data generators and trainers: deep linear networks, the
toy model of superposition, polynomial potentials, the tanh network, and the modular-addition
network of the grokking study (any ``nn.Module`` is sampled through
``sltlab.estimators.FunctionalModel``)."""

from sltlab.models.deep_linear import (DeepLinearNetwork, balanced_factorization, orthonormal_frame, regression_data,
                                       sufficient_statistics, teacher_matrix)
from sltlab.models.deep_linear_losses import FullDataLoss, PopulationLoss, StackedFullDataLoss
from sltlab.models.modular import (AdamWConfig, ModularAdditionNetwork, ModularRun, ModularSplit,
                                   modular_addition_split, train_modular)
from sltlab.models.potential import Potential
from sltlab.models.tanh_network import TanhNetwork, null_regression_data
from sltlab.models.tms import ToyModelOfSuperposition
from sltlab.models.training import (TrainingRun, balanced_initialization, least_squares_fit, mode_overlaps,
                                   numerical_rank, train_deep_linear)

__all__ = ["DeepLinearNetwork", "FullDataLoss", "PopulationLoss", "StackedFullDataLoss", "balanced_factorization",
           "orthonormal_frame",
           "regression_data", "sufficient_statistics", "teacher_matrix", "AdamWConfig",
           "ModularAdditionNetwork", "ModularRun", "ModularSplit", "modular_addition_split", "train_modular",
           "Potential", "TanhNetwork",
           "null_regression_data", "ToyModelOfSuperposition", "TrainingRun", "balanced_initialization",
           "least_squares_fit", "mode_overlaps", "numerical_rank", "train_deep_linear"]
