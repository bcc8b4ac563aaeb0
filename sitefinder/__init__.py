"""sitefinder: rank candidate plots for småhus the way the research says they should be judged."""

__version__ = "0.1.0"
