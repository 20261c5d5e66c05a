"""Real OGC servers on 127.0.0.1 for the tests, and a fault proxy in front of them
(README.md here says how to start them by hand)."""
