"""The simulated AI counselor: crisis and grief detection by patterns, canned replies."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CRISIS_PATTERNS = (
    r"\bkill(ing)? myself\b",
    r"\bsuicid(e|al)\b",
    r"\bend (my|it) (life|all)\b",
    r"\bend it all\b",
    r"\bwant to die\b",
    r"\bbetter off dead\b",
    r"\bself[- ]?harm\b",
    r"\bhurt(ing)? myself\b",
    r"\bcut(ting)? myself\b",
    r"\boverdose\b",
    r"\bno reason to live\b",
)
GRIEF_PATTERNS = (
    r"\bpassed away\b",
    r"\b(died|dying)\b",
    r"\bfuneral\b",
    r"\bgriev(e|ing)\b",
    r"\bgrief\b",
    r"\bbereave(d|ment)\b",
    r"\blost my (mother|mom|father|dad|wife|husband|partner|son|daughter|child|friend|"
    r"brother|sister|grandmother|grandfather|dog|cat)\b",
)
_CRISIS = re.compile("|".join(CRISIS_PATTERNS), re.IGNORECASE)
_GRIEF = re.compile("|".join(GRIEF_PATTERNS), re.IGNORECASE)

CRISIS_RESOURCES: tuple[dict[str, str], ...] = (
    {
        "name": "988 Suicide & Crisis Lifeline",
        "contact": "Call or text 988",
        "url": "https://988lifeline.org",
    },
    {
        "name": "Crisis Text Line",
        "contact": "Text HOME to 741741",
        "url": "https://www.crisistextline.org",
    },
    {"name": "Emergency services", "contact": "Call 911 if you are in immediate danger", "url": ""},
)


@dataclass(frozen=True)
class Assessment:
    """What the pattern matcher found in a message."""

    crisis: bool
    grief: bool
    resources: list[dict[str, Any]] = field(default_factory=list)


def assess(text: str, *, detection: bool = True) -> Assessment:
    """Flag crisis and grief language; crisis carries crisis resources."""
    if not detection:
        return Assessment(False, False, [])
    crisis = bool(_CRISIS.search(text))
    grief = bool(_GRIEF.search(text))
    return Assessment(crisis, grief, [dict(r) for r in CRISIS_RESOURCES] if crisis else [])


def compose_reply(text: str, assessment: Assessment) -> str:
    """Return the simulated counselor's reply."""
    if assessment.crisis:
        return (
            "I'm really sorry you're feeling this way, and I'm glad you told me. You don't have "
            "to go through this alone. If you are in immediate danger, call 911. You can call or "
            "text 988 to reach the Suicide & Crisis Lifeline right now, any time. Would you be "
            "willing to reach out to one of them, or to someone you trust, while we keep talking?"
        )
    if assessment.grief:
        return (
            "I'm so sorry for your loss. Grief can feel overwhelming, and there is no right way "
            "to go through it. Would you like to tell me about them, or about what the last days "
            "have been like for you?"
        )
    words = len(text.split())
    if words < 4:
        return "Thank you for sharing. Could you tell me a little more about what's on your mind?"
    return (
        "It sounds like this has been weighing on you. What feels most important to talk "
        "about right now, and how has it been affecting your day-to-day life?"
    )
