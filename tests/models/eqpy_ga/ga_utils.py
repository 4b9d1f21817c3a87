"""EMEWS GA parameters: read from the JSON file, drawn and mutated (a sibling import of ga.py)."""

import json
import random


class Parameter:
    def __init__(self, item):
        self.name, self.type = item["name"], item["type"]
        self.item = item

    def random_draw(self):
        if self.type == "float":
            return random.uniform(self.item["lower"], self.item["upper"])
        if self.type == "int":
            return random.randint(self.item["lower"], self.item["upper"])
        if self.type == "constant":
            return self.item["value"]
        return random.choice(self.item["values"])

    def mutate(self, value):
        if random.random() > 0.3 or self.type == "constant":
            return value
        if self.type == "float":
            span = self.item["upper"] - self.item["lower"]
            return min(self.item["upper"], max(self.item["lower"], value + random.gauss(0, span / 10)))
        if self.type == "int":
            return min(self.item["upper"], max(self.item["lower"], value + random.choice((-1, 1))))
        return random.choice(self.item["values"])


def create_parameters(path):
    with open(path) as file:
        return [Parameter(item) for item in json.load(file)]
