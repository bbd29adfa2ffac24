"""Seed data: the demo county (`fupin seed-demo`) and large synthetic provinces (`fupin seed-synthetic`)."""
