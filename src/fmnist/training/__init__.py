"""Training: from settings to a run directory.

`config` (TrainConfig and the named recipes), `train` (the fit loop), `resume` (continue
after a kill), `rundir` (what a run leaves), `distributed` (torchrun), `seeds` (one recipe
over several seeds), `tune` (Optuna), `tracking` (MLflow). May import the layers below it
(`data`, `models`, `evaluate`, `checkpoint`); never `analysis`, `deploy` or `cli`.
"""
