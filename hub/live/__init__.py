"""Micro-live (微直播): live sessions, their entries, real-time pages and Weibo fan-out."""
