"""Feature flags in ten lines: a GrowthBook payload, one user, three questions.

Run: python examples/flags_quickstart.py
"""

from __future__ import annotations

from cognitionos.flags import FlagEngine

payload = {
    "features": {
        "new-checkout": {
            "defaultValue": False,
            "rules": [
                {"condition": {"country": {"$in": ["NL", "BE"]}}, "force": True, "coverage": 0.5}
            ],
        },
        "button-color": {
            "defaultValue": "blue",
            "rules": [{"key": "color-test", "variations": ["blue", "green"], "hashVersion": 2}],
        },
    }
}

engine = FlagEngine.from_growthbook(payload)
user = {"id": "user-42", "country": "NL"}

checkout = engine.evaluate("new-checkout", user, default=False)
color = engine.evaluate("button-color", user, default="blue")
print(f"new-checkout={checkout.value} ({checkout.reason})")
print(f"button-color={color.value} variant={color.variant} ({color.reason})")
print("bootstrap:", {k: ev.value for k, ev in engine.evaluate_all(user).items()})
