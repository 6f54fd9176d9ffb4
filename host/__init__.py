"""The lab PC toolkit: link to boards, flashing, sessions, recording, live view, plots."""
