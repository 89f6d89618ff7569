"""The JustRL recipe on verl's Ray trainer (``justrl train --engine verl``).

In: a :class:`~justrl.recipe.Recipe` and problem files. Out: verl overrides, a launch script,
verl-format parquet data and verl's custom reward function (``reward``, loaded by verl as
``pkg://justrl.verl_reward``). Imports: the ground floor, data and verifiers.

The paper's runs used verl (``python -m verl.trainer.main_ppo`` with some seventy overrides). This
package renders a :class:`~justrl.recipe.Recipe` as those overrides, checks them against the
*installed* verl's own Hydra configuration before anything is launched, writes them into a launch
script in the run directory, and runs it. Read it in this order:

- :mod:`~justrl.verl_engine.plan`: :class:`VerlPlan`, the cluster shape and where the run's files go;
- :mod:`~justrl.verl_engine.mapping`: :data:`MAPPING`, every recipe field -> its verl key(s) or why
  it has none, plus the engine settings that are not recipe fields (the release's choices);
- :mod:`~justrl.verl_engine.rendering`: the settings as ``key=value`` overrides Hydra reads back exactly;
- :mod:`~justrl.verl_engine.validate`: composed with verl's ``ppo_trainer`` config and refused,
  naming the key, where verl would not take them;
- :mod:`~justrl.verl_engine.launcher`: the launch script, the command, running it.

The reward function verl calls is :mod:`justrl.verl_reward` (verl loads it as
``pkg://justrl.verl_reward``); the data it trains on is written by :mod:`justrl.verl_engine.data_export`.
"""

from justrl.errors import VerlConfigError
from justrl.verl_engine.launcher import (
    ENTRYPOINT,
    SCRIPT_NAME,
    command,
    format_command,
    launch,
    launch_script,
    shell_quote,
    write_launch_script,
)
from justrl.verl_engine.mapping import (
    ADDED_KEY_PREFIXES,
    MAPPING,
    PROJECT_NAME,
    REWARD_FN_NAME,
    REWARD_FN_PATH,
    VERL_VERSION,
    Route,
    deviations,
    engine_settings,
    fixed_in_verl,
    is_added_key,
    not_in_verl,
    to,
    unmapped_fields,
    verl_settings,
)
from justrl.verl_engine.plan import VerlPlan, default_run_dir, default_train_file, default_val_file, make_plan
from justrl.verl_engine.rendering import hydra_value, overrides, render, show_mapping
from justrl.verl_engine.validate import compose, installed_verl_version, validate_overrides, verl_config_dir

__all__ = [
    "ADDED_KEY_PREFIXES", "ENTRYPOINT", "MAPPING", "PROJECT_NAME", "REWARD_FN_NAME", "REWARD_FN_PATH",
    "SCRIPT_NAME", "VERL_VERSION", "Route", "VerlConfigError", "VerlPlan", "command", "compose",
    "default_run_dir", "default_train_file", "default_val_file", "deviations", "engine_settings",
    "fixed_in_verl", "format_command", "hydra_value", "installed_verl_version", "is_added_key", "launch",
    "launch_script", "make_plan", "not_in_verl", "overrides", "render", "shell_quote", "show_mapping", "to",
    "unmapped_fields", "validate_overrides", "verl_config_dir", "verl_settings", "write_launch_script",
]
