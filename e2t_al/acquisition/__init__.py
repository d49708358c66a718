"""From predictions to experiments: BoTorch models over the E2T ensemble (and GP baselines), objectives,
novelty of element domains, and batch selection over a discrete candidate pool."""

CHOSEN_BY = ("highest mean", "acquisition")  # what may choose a batch's place (an exploitation place first), as stored
