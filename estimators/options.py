"""Names of the samplers and localisation centres, importable without torch (the command
line builds its parser from them before anything heavy is loaded)."""

SAMPLER_NAMES = ("sgld", "rmsprop_sgld", "sgnht", "mala")
LOCALIZATIONS = ("empirical_minimum", "true_parameter")
