"""The gateway simulator (`ibkr-sim`): a local IB Gateway and Client Portal gateway that speak
IBKR's real protocols from one simulated portfolio, with faults on demand and the exact figures
of every account, for the bridge's tests and its local profile."""
