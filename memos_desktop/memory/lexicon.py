"""Word lists of the attribute model (``memory/slots.py``): relations and their usual
names, jobs, diets, demonyms, number words. English only."""

from __future__ import annotations

import re

# --- lexicons ------------------------------------------------------------------------------

DOG_BREEDS = (
    "beagle labrador spaniel terrier poodle dachshund chihuahua corgi collie schnauzer "
    "rottweiler dalmatian greyhound whippet pug shih-tzu bulldog retriever sheepdog "
    "labradoodle cockapoo husky"
).split()

RELATIONS: dict[str, str] = {
    **dict.fromkeys(("mother", "mom", "mum", "mam", "mommy", "mummy", "mama"), "mother"),
    **dict.fromkeys(("father", "dad", "daddy", "papa"), "father"),
    **dict.fromkeys(("grandmother", "grandma", "gran", "granny", "nan", "nana"), "grandmother"),
    **dict.fromkeys(("grandfather", "grandpa", "granddad", "grandad"), "grandfather"),
    **dict.fromkeys(("fiance", "fiancé", "fiancee", "fiancée"), "fiance"),
    **dict.fromkeys(("kid", "child", "kids", "children"), "child"),
    **dict.fromkeys(("sibling", "siblings"), "sibling"),
    # A pet is often named by its breed ("a beagle called Fasola"): it is the dog. Breeds that
    # are also everyday words ("boxer", "lab", "pointer", "persian") are left out.
    **dict.fromkeys(DOG_BREEDS, "dog"),
    **dict.fromkeys(("siamese", "ragdoll", "sphynx", "tabby"), "cat"),
    **dict.fromkeys(("neighbour", "neighbor"), "neighbour"),
    **dict.fromkeys(("flatmate", "roommate", "housemate"), "flatmate"),
    **dict.fromkeys(("colleague", "coworker", "co-worker"), "colleague"),
    **dict.fromkeys(("boss", "manager"), "boss"),
    **{
        w: w
        for w in (
            "sister brother wife husband partner boyfriend girlfriend son daughter baby aunt "
            "uncle cousin niece nephew friend landlord landlady teacher doctor therapist dog cat "
            "puppy kitten rabbit parrot hamster horse pet parents in-laws stepmother stepfather "
            "stepson stepdaughter twin"
        ).split()
    },
}


def same_relation(text: str) -> list[str]:
    """The other usual names of the relations ``text`` names ("father" -> "dad", "daddy",
    "papa"), for a word search that would miss "my dad" asked about "my father"."""
    words = {w.strip("'") for w in text.casefold().replace("\u2019", "'").split()}
    words = {w[:-2] if w.endswith("'s") else w.strip("?.,!") for w in words}
    named = {RELATIONS[w] for w in words if w in RELATIONS}
    named |= {k for r in named for k in KINDS.get(r, ())}  # "kids" -> "daughter", "son"
    return sorted(w for w, r in RELATIONS.items() if r in named and w not in words)


# The relations a plural or general one stands for ("How many kids do I have?" is answered
# by "our daughter Zosia").
KINDS = {
    "child": ("son", "daughter", "stepson", "stepdaughter", "baby"),
    "parents": ("mother", "father"),
    "sibling": ("brother", "sister", "twin"),
    "pet": ("dog", "cat", "puppy", "kitten", "rabbit", "parrot", "hamster"),
}


# "Agnieszka's brother", "her (older) brother": a relation someone else has.
_POSSESSOR = re.compile(r"(?:\b(?:his|her|their)|[\w-]+'s)\s+(?:\w+\s+)?$", re.I)


def my_relations(question: str) -> set[str]:
    """The relations a question asks about as the person's own ("my brother", "my
    brother's name", "our kids"), as their usual names."""
    q = question.casefold().replace("\u2019", "'")
    out: set[str] = set()
    for m in re.finditer(r"\b(?:my|our)\s+([\w'-]+)(?:\s+([\w'-]+))?", q):
        for w in m.groups():  # "my brother", "my older brother"
            w = re.sub(r"'s?$", "", w or "")
            if w in RELATIONS:
                out.add(RELATIONS[w])
                break
    return out


def own_relation(relation: str, text: str) -> bool:
    """Does ``text`` name ``relation`` (a usual name) as the person's own, not only as
    someone else's ("Agnieszka's brother", "her dad")?"""
    t = text.replace("\u2019", "'")
    return any(
        RELATIONS.get(m.group().casefold()) == relation and not _POSSESSOR.search(t[: m.start()])
        for m in re.finditer(r"[\w-]+", t)
    )


def others_relation(question: str, answer: str) -> bool:
    """Does ``answer`` give someone else's relative for the person's own that ``question``
    asks about ("What's my brother's name?" -> "Agnieszka's brother Krzysztof.")?"""
    t = answer.replace("\u2019", "'")
    for rel in my_relations(question):
        named = any(RELATIONS.get(w.casefold()) == rel for w in re.findall(r"[\w-]+", t))
        if named and not own_relation(rel, t):
            return True
    return False


GROUPS = {"parents": ("mother", "father"), "in-laws": ()}
PETS = frozenset("dog cat puppy kitten rabbit parrot hamster horse pet".split())

JOBS = frozenset(
    """
    accountant actor actress architect artist assistant baker barista barber bartender biologist
    builder butcher carpenter cashier chef chemist cleaner clerk coach consultant cook courier
    dancer dentist designer developer doctor driver economist editor electrician engineer
    farmer firefighter fisherman florist gardener hairdresser historian illustrator journalist
    judge lawyer lecturer librarian mechanic midwife musician nanny nurse officer painter
    paramedic pharmacist photographer physicist physiotherapist pilot plumber poet policeman
    policewoman postman professor programmer psychologist receptionist researcher salesman
    scientist secretary singer soldier student surgeon tailor teacher technician therapist
    translator tutor vet veterinarian waiter waitress writer analyst manager director
    administrator banker broker ceo cto founder entrepreneur freelancer intern janitor
    optician radiologist social worker carer caregiver miner sailor guard detective
    """.split()
)
JOB_SUFFIXES = ("ist", "eer", "ician", "grapher", "ologist")
NOT_JOBS = frozenset(
    """
    fan person lover member owner beginner user believer smoker drinker eater sleeper
    reader walker sister brother mother father daughter partner other number dinner winner
    mess bit lot big huge night morning early late only single first fiance
    """.split()
)
DIETS = {
    "vegan": "vegan",
    "vegetarian": "vegetarian",
    "pescatarian": "pescatarian",
    "pescetarian": "pescatarian",
    "keto": "keto",
    "gluten-free": "gluten-free",
    "gluten free": "gluten-free",
    "dairy-free": "dairy-free",
    "halal": "halal",
    "kosher": "kosher",
    "flexitarian": "flexitarian",
}
MARITAL = frozenset("married single divorced engaged widowed separated".split())
DEMONYMS = frozenset(
    """
    portuguese brazilian spanish french german italian english british scottish irish welsh
    american canadian mexican chinese japanese korean indian pakistani russian polish dutch
    belgian swiss austrian swedish norwegian danish finnish greek turkish angolan nigerian
    kenyan australian argentinian chilean colombian peruvian ukrainian romanian czech
    hungarian cuban egyptian moroccan vietnamese thai filipino
    """.split()
)
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}
SYNONYMS = {"film": "movie", "films": "movie", "movies": "movie", "song": "song", "tv": "tv"}
# Words of what a note or a question is about that another word says as well ("I take tram
# 50 to the office" is about getting to work; "Where am I originally from?" about where the
# person was born): for the topic tests only, not the attribute model.
TOPIC_SYNONYMS = {
    "office": "work",
    "originally": "born",
    "hometown": "born",
    # what the person cannot stand ("Which herb can't I stand?": "I hate coriander")
    **dict.fromkeys(("stand", "dislike", "dislikes", "loathe", "detest"), "hate"),
    **dict.fromkeys(("enjoy", "enjoys", "adore"), "love"),
}

# Car makes: "bought a blue Renault Clio" is about the person's car.
CAR_MAKES = frozenset(
    """
    alfa audi bmw byd chevrolet chevy citroen citroën cupra dacia fiat ford honda hyundai jaguar
    jeep kia lancia land lexus mazda mercedes mg mini mitsubishi nissan opel peugeot polestar
    porsche renault saab seat skoda škoda smart subaru suzuki tesla toyota vauxhall volkswagen
    volvo vw
    """.split()
)
# Things a person has one of at a time ("my phone is a Fairphone 5").
DEVICES = frozenset("phone mobile laptop computer tablet watch camera bike bicycle".split())
# Words naming a planned occasion ("a dentist appointment on Friday").
OCCASIONS = frozenset(
    "appointment meeting class lesson session exam interview check-up checkup training".split()
)


# --- kinds of things a question may name ("What sport do I love?") --------------------------

_SPORTS = """
    football soccer tennis basketball volleyball handball rugby cricket baseball hockey golf
    boxing swimming running jogging cycling climbing bouldering skiing snowboarding surfing
    sailing rowing kayaking canoeing hiking trekking yoga pilates crossfit badminton squash
    karate judo fencing skating triathlon marathon weightlifting wrestling archery padel
    """
_PASTIMES = """
    reading painting drawing gardening cooking baking knitting crocheting sewing photography
    fishing chess gaming birdwatching woodworking pottery writing singing dancing camping
    origami calligraphy puzzles crosswords
    """
_INSTRUMENTS = """
    guitar bass drums piano keyboard violin cello viola flute saxophone trumpet trombone
    clarinet ukulele harp accordion harmonica banjo mandolin oboe
    """
# A question naming the kind ("What's Rafał's hobby?", "Which herb can't I stand?") is about
# a note naming one of its members ("really big into sailing", "I hate coriander"). Keys are
# the question's words; English only.
CATEGORIES: dict[str, frozenset[str]] = {
    k: frozenset(v.split())
    for k, v in {
        "sport": _SPORTS,
        "hobby": _SPORTS + _PASTIMES + _INSTRUMENTS,
        "pastime": _SPORTS + _PASTIMES,
        "instrument": _INSTRUMENTS,
        "breed": " ".join(DOG_BREEDS) + " siamese ragdoll sphynx persian maine coon bengal",
        "herb": """coriander cilantro parsley basil dill mint oregano thyme rosemary sage
            chives tarragon lovage""",
        "spice": """cumin paprika chilli chili pepper cinnamon nutmeg turmeric ginger cloves
            cardamom saffron""",
        "drink": """coffee tea beer wine juice milk soda cola lemonade kombucha mate
            whisky whiskey vodka gin rum cider""",
        "beer": "ipa lager stout pilsner pils ale porter weissbier",
        "language": """english polish german french spanish italian portuguese dutch russian
            ukrainian czech slovak swedish norwegian danish finnish greek turkish arabic
            hebrew hindi chinese mandarin cantonese japanese korean""",
        # what a unit is for ("How should you give me temperatures?": "use Celsius")
        "temperature": "celsius fahrenheit °c °f",
        "distance": "km kilometres kilometers miles metres meters metric imperial",
        "weight": "kg kilograms kilos pounds lbs stone metric imperial",
        "currency": "euro euros eur zloty złoty pln dollars usd pounds gbp",
    }.items()
}
# Words of a question that ask for one of those kinds ("what do I do to unwind").
CATEGORY_WORDS = {
    **{k: k for k in CATEGORIES},
    **dict.fromkeys(("unwind", "relax", "hobbies", "pastimes"), "hobby"),
    **{"sports": "sport", "instruments": "instrument", "herbs": "herb", "spices": "spice"},
    **{"drinks": "drink", "beers": "beer", "languages": "language"},
    **{"temperatures": "temperature", "distances": "distance", "weights": "weight"},
    **dict.fromkeys(("money", "prices", "price"), "currency"),
}
