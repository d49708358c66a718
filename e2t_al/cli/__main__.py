from e2t_al.cli import app

app()
