"""Data shipped with learnboard: iris.csv (the 150-row UCI Iris data set, see docs/tasks.md)."""
