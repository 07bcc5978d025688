"""`.venv/bin/python -m bench` = `bash bench/run.sh`: see bench/run.py."""

from bench.run import main

raise SystemExit(main())
