"""A campaign: its set-up from a config (``setup``), its state read from the store (``state``), the steps of one
iteration (``loop``), a simulated lab for retrospective runs (``simulated_lab``), reports (``reports``) and the demo
(``demo``). This layer uses the model library and the store; the flows, the CLI and the web app use it."""
