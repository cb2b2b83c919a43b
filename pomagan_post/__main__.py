"""``python -m pomagan_post ...`` runs the ``pomagan-post`` command line (same commands, same exit codes)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="pomagan-post")
