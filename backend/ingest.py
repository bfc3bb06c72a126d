#!/usr/bin/env python3
"""Ingest course materials: `python ingest.py --directory ../course_materials`.

Thin entry point; the work happens in app/ingestion/ (see cli.py for the options).
"""

import sys

from app.ingestion.cli import main

if __name__ == "__main__":
    sys.exit(main())
