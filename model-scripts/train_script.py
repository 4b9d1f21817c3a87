"""A model as a Python script (not a function): ridge regression fit by gradient descent.

Called as: python train_script.py PARAMS_FILE. It reads its hyperparameters from the JSON
params file, prints `MEXPLORE_REPORT <epoch> <val_loss>` after every epoch (intermediate
values the master receives while it runs) and ends with one `MEXPLORE_RESULT <json>` line.
The data are generated from a fixed seed, so nothing is downloaded.
"""

import json
import sys

import numpy as np


def make_data(seed=0, n=400, features=8, noise=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    w = rng.normal(size=features)
    y = X @ w + noise * rng.normal(size=n)
    split = n * 3 // 4
    return X[:split], y[:split], X[split:], y[split:]


def main(params_file):
    params = json.load(open(params_file))
    lr, l2, epochs = params["lr"], params["l2"], int(params["epochs"])
    X, y, X_val, y_val = make_data()
    w = np.zeros(X.shape[1])
    for epoch in range(epochs):
        gradient = X.T @ (X @ w - y) / len(y) + l2 * w
        w -= lr * gradient
        val_loss = float(np.mean((X_val @ w - y_val) ** 2))
        print(f"MEXPLORE_REPORT {epoch} {val_loss}", flush=True)
    train_loss = float(np.mean((X @ w - y) ** 2))
    print("MEXPLORE_RESULT " + json.dumps({"val_loss": val_loss, "train_loss": train_loss}))


if __name__ == "__main__":
    main(sys.argv[1])
