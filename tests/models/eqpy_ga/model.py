"""The objective of the EQ/Py tests: Rosenbrock plus a small offset; x > 1.9 fails (data, not a crash)."""


def rosenbrock(params, ctx):
    x, y = params["x"], params["y"]
    if x > 1.9:
        raise ValueError("x above 1.9 is outside the model's domain")
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2 + params["shift"] * 0.01 + (params["kind"] == "noisy") * 0.05
