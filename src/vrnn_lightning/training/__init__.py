"""Lightning glue: the module (loss, logging, optimiser), its callbacks, schedules, the latent-usage metric and
checkpoint IO. Imports `models/` and `data/` through their contracts; never Hydra, never `launch/`."""
