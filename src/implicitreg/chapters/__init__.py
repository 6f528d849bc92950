"""The chapters as tested modules: each holds its parameters, the runs it makes, what it
computes from them, its registered criteria and its figures; the notebook is the prose."""
