"""The reader's clause patterns (``memory/slots.py`` applies them): what a clause after its
subject says, as (kind, pattern) in order, the first match wins. Data only: the claim each kind
makes is built in ``slots._claim``.

Kept apart from slots.py so the attribute model (what conflicts with what) reads on its own.
"""

from __future__ import annotations

import re

from memos_desktop.memory.lexicon import (
    CAR_MAKES,
    DEVICES,
    DIETS,
    MARITAL,
    NUMBER_WORDS,
    OCCASIONS,
    PETS,
    RELATIONS,
)

NAME = r"(?-i:[A-Z])[\w'-]+(?: (?-i:[A-Z])[\w'-]+)?"
REL_WORDS = "|".join(sorted((re.escape(r) for r in RELATIONS), key=len, reverse=True))
_BE = r"(?:am|is|are|was|'m|'s|'re)"
_NOT = r"(?:do not|does not|did not|am not|is not|are not|no longer|never|not)"
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (p, re.compile(rx, re.I))
    for p, rx in [
        ("former", r"^used to live in (?P<v>.+)"),
        ("former", r"^(?:lived|grew up) in (?P<v>.+)"),
        ("residence_neg", rf"^{_NOT} (?:live|lives|living) in (?P<v>.+)"),
        (
            "residence",
            rf"^(?:(?:now |still |currently )?(?:live|lives|reside|resides)|{_BE} (?:now |still |"
            rf"currently )?(?:living|based|settled)) in (?P<v>.+)",
        ),
        (
            "residence",
            r"^(?:have |has |just |recently )*(?:moved|relocated) (?:back )?to (?P<v>.+)",
        ),
        (
            "residence",
            rf"^{_BE} (?:now )?in (?P<v>(?-i:[A-Z])[\w-]+(?: (?-i:[A-Z])[\w-]+)?)(?: now)?$",
        ),
        ("origin", rf"^{_BE} (?:originally )?from (?P<v>.+)"),
        ("origin", r"^(?:come|comes) from (?P<v>.+)"),
        ("born", r"^(?:was|were) born (?:on|in) (?P<v>.+)"),
        ("name", rf"^(?:'s )?name {_BE} (?:now |actually |still )?(?P<v>{NAME}|[a-z][\w'-]+$)"),
        ("name", rf"^{_BE} (?:called|named) (?P<v>{NAME})"),
        ("name", rf"^(?:'s )?name (?:changed to|is now) (?P<v>{NAME})"),
        ("nickname", rf"^(?:(?:please|just) )?(?:call me|address me as) (?P<v>{NAME})"),
        (
            "relname",
            rf"^have (?:a|an|one|two|three|\d+) (?P<rel>{REL_WORDS})s? (?:called|"
            rf"named) (?P<v>{NAME})",
        ),
        ("relname", rf"^{_BE} (?:my|our) (?P<rel>{REL_WORDS})\b"),
        ("spouse", rf"^{_BE} married to (?P<v>{NAME})"),
        (
            "marital",
            rf"^(?:{_BE}|have been|got|are getting) (?:now |happily |"
            rf"recently )?(?P<v>{'|'.join(MARITAL)})\b",
        ),
        ("allergy_neg", rf"^{_NOT} allergic to (?P<v>.+)"),
        ("allergy", rf"^{_BE} (?:also |very |severely |mildly )?allergic to (?P<v>.+)"),
        (
            "allergy",
            r"^(?:have|has|'ve got|have got) (?:a |an )?(?:severe |mild )?(?P<v>[\w-]+) allergy",
        ),
        ("intolerance", rf"^{_BE} (?P<v>[\w-]+) intolerant"),
        (
            "diet",
            rf"^(?:{_BE}|went|became|have become|has become|turned|go|gone|have gone) (?:now |"
            rf"also |a |strictly |fully )*(?P<v>{'|'.join(DIETS)})\b",
        ),
        ("diet_neg", rf"^{_NOT} (?:a )?(?P<v>{'|'.join(DIETS)})\b"),
        (
            "diet_eat",
            r"^(?:started eating|started to eat|eat|eats) (?P<v>meat|fish|chicken|"
            r"seafood)(?: again| now)",
        ),
        ("food_neg", r"^(?:do not|does not|never|no longer) (?:eat|drink) (?P<v>.+)"),
        ("food", r"^(?:eat|drink) (?P<v>.+?) (?:again|now)$"),
        (
            "age",
            rf"^(?:{_BE} (?:now )?|turned |just turned |will be ){{1,2}}(?P<v>\d+|"
            rf"{'|'.join(NUMBER_WORDS)})(?: years? old)?(?: (?:now|last \w+|this \w+|"
            rf"yesterday|today|on \w+|in \w+))?$",
        ),
        ("birthday", rf"^(?:'s )?birthday {_BE} (?:on )?(?P<v>.+)"),
        (
            "phone",
            rf"^(?:'s )?(?:new )?(?:phone number|mobile number|number|phone|mobile) (?:{_BE}|"
            rf"changed to|is now) (?:now )?(?P<v>[\d +()-]{{6,}})",
        ),
        (
            "email",
            rf"^(?:'s )?(?:new )?email(?: address)? (?:{_BE}|changed to) (?:now )?(?P<v>\S+@\S+)",
        ),
        ("address", rf"^(?:'s )?(?:new )?address {_BE} (?P<v>.+)"),
        ("selfname", r"^(?:am|'m) (?P<v>(?-i:[A-Z])[\w'-]+(?: (?-i:[A-Z])[\w'-]+)?)$"),
        (
            "occupation_as",
            r"^(?:now |currently |still )?(?:work|works|am working|is working|"
            r"'m working) as (?:a |an )?(?P<v>.+)",
        ),
        ("occupation_as", r"^(?:got|have|found|started) a (?:new )?job as (?:a |an )?(?P<v>.+)"),
        (
            "occupation_be",
            rf"^(?:{_BE}|became|become|has become|have become) (?:now |currently |still |"
            rf"also )?(?:an? )(?P<v>[\w -]+)",
        ),
        ("occupation_be", rf"^{_BE} (?:now )?(?P<v>retired|unemployed|self-employed)\b"),
        ("occupation_be", rf"^(?:'s )?job {_BE} (?P<v>.+)"),
        (
            "employer_neg",
            r"^(?:left|quit|have left|has left|no longer work at|"
            r"no longer works at) (?:my job at |his job at |her job at |"
            r"the job at )?(?P<v>(?:the )?[\w&' -]+)",
        ),
        (
            "employer",
            r"^(?:now |currently |still )?(?:work|works|am working|is working|'m working) (?:at|"
            r"for) (?P<v>.+)",
        ),
        (
            "employer",
            r"^(?:started|joined|start|began) (?:a new job |working |work )?(?:at|with) (?P<v>.+)",
        ),
        ("employer", r"^(?:started|joined) (?P<v>(?-i:[A-Z])[\w&-]+(?: (?-i:[A-Z])[\w&-]+)?)"),
        ("employer", rf"^{_BE} (?:now )?(?:at|with) (?P<v>(?-i:[A-Z])[\w&-]+)"),
        (
            "worklocation",
            r"^(?:work|works|am working|"
            r"is working) in (?P<v>(?-i:[A-Z])[\w-]+(?: (?-i:[A-Z])[\w-]+)?)$",
        ),
        (
            "employer",
            r"^(?:now |currently |still )?(?:work|works|am working|is working) in (?P<v>.+)",
        ),
        ("commute", r"^(?:commute|commutes|go|get|travel) (?:to work )?by (?P<v>[\w-]+)"),
        (
            "commute",
            r"^(?P<v>cycle|bike|walk|drive|run|ride|cycles|bikes|walks|drives) to (?:work|"
            r"the office)",
        ),
        (
            "commute",
            r"^take (?:the )?(?P<v>metro|bus|train|tram|subway|ferry) (?:to work|everywhere)",
        ),
        ("study", r"^(?:study|studies|am studying|is studying|'m studying) (?P<v>.+)"),
        (
            "children",
            r"^(?:have|has|'ve got) (?P<v>no|one|two|three|four|five|six|\d+) (?:kids|children|"
            r"sons|daughters|kid|child)\b",
        ),
        (
            "pet",
            rf"^(?:have|has|own|owns|got|adopted) (?:a|an|one|two|"
            rf"three) (?P<v>{'|'.join(sorted(PETS))})s?(?: (?:called|named) (?P<n>{NAME}))?",
        ),
        (
            "car_neg",
            r"^(?:sold|got rid of|no longer have|do not have) (?:the|my|our) (?P<v>(?:car|"
            r"(?-i:[A-Z])[\w-]+))",
        ),
        (
            "car",
            rf"^(?:bought|got|have bought|have got|now drive|own|owns) (?:a|an) (?:new |used |"
            rf"second-hand )?(?P<v>(?:[\w-]+ )?(?:{'|'.join(sorted(CAR_MAKES))})\b.*)",
        ),
        (
            "replaced",
            r"^(?:replaced|swapped|traded in|traded|exchanged) (?:my|our|the) (?P<o>.+?) "
            r"(?:with|for) (?:a |an |the |my )?(?P<v>.+)",
        ),
        (
            "device",
            rf"^'s (?P<o>{'|'.join(sorted(DEVICES))}) (?:{_BE}|was) (?:now |actually )?(?:a |an )"
            r"(?P<v>.+)",
        ),
        (
            "when",
            rf"^(?:have|'ve got|have got|got) (?:a|an|my|the) (?P<o>[\w -]+?) "
            rf"(?:{'|'.join(sorted(OCCASIONS))}) (?P<v>(?:on|at|this|next|in|tomorrow|today)\b.*)",
        ),
        (
            "when",
            r"^(?:go|do|have|take) (?P<o>[\w-]+ing|[\w-]+ (?:class|lessons?|training)) "
            r"(?P<v>(?:every|on) .+)",
        ),
        (
            "when",
            r"^(?:have |'ve |has )?(?:moved|rescheduled|postponed|pushed back|pushed|changed|"
            r"shifted) (?:my|our|the) (?P<o>[\w -]+?) to (?P<v>.+)",
        ),
        (
            "prefer",
            r"^(?:really |also |actually |still )*(?:prefer|prefers) (?P<v>.+?) (?:over|to|"
            r"rather than|more than) (?P<o>.+)",
        ),
        (
            "prefer",
            r"^(?:have |'ve |has )?(?:switched|changed|moved|gone over) (?:from (?P<o>.+?) )?to "
            r"(?P<v>.+)",
        ),
        (
            "food_neg",
            r"^(?:barely|rarely|hardly|seldom|hardly ever) (?:eat|drink|have) (?P<v>.+)",
        ),
        ("car", r"^(?:drive|drives) (?:a|an|the) (?P<v>.+)"),
        ("car", r"^(?:'s )?car (?:is|was) (?:now |actually )?(?:a |an )?(?P<v>.+)"),
        ("language", r"^(?:speak|speaks) (?P<v>.+)"),
        (
            "learning_neg",
            r"^(?:gave up|stopped learning|quit learning|have given up) (?P<v>[\w-]+)",
        ),
        ("learning", rf"^{_BE} (?:now )?learning (?P<v>[\w-]+)"),
        ("hobby", r"^(?:play|plays) (?:the )?(?P<v>[\w-]+)(?P<when> (?:every|on|at) .+)?"),
        (
            "favourite",
            r"^(?:'s )?favou?rite (?P<n>[\w ]+?) (?:is|are) (?:now |actually |still )?(?P<v>.+)",
        ),
        (
            "like_neg",
            r"^(?:do not|does not|no longer|never|don't) (?:really )?(?:like|love|enjoy) (?P<v>.+)",
        ),
        (
            "like_neg",
            rf"^(?:hate|hates|dislike|dislikes|detest|detests|cannot stand|can't stand|"
            rf"{_BE} not (?:a |really a )?(?:big )?fan of|"
            rf"{_BE} not (?:really )?into) (?P<v>.+)",
        ),
        (
            "like",
            rf"^(?:(?:really |also |actually |absolutely )*(?:like|likes|love|loves|enjoy|enjoys|"
            rf"adore|adores|prefer|prefers)|{_BE} (?:a )?(?:big |huge |great )?fan of|"
            rf"{_BE} (?:really )?into) (?P<v>.+)",
        ),
        ("car_be", rf"^{_BE} (?:now )?(?P<v>.+)"),  # "my car is blue" (subject car only)
        ("location", rf"^{_BE} (?:in|at|on) (?P<v>.+)"),  # "my office is in Boavista"
        ("description", rf"^{_BE} (?:now )?(?P<v>.+)"),
    ]
]
