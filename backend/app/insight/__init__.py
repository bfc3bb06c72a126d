"""What a course's students asked, for its instructor: app/insight/report.py."""
