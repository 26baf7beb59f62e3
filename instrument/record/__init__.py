"""Outputs that keep the show: video files now, performance files later."""
