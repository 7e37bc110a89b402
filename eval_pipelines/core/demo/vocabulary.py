"""The demo shop's taxonomy and words.

Written to make lexical search hard in realistic ways: every concept has synonyms (a "couch" is a
"sofa"), and words are shared across categories ("case" for phones and bags, "portable", "pro", "set").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Leaf:
    """A taxonomy leaf: one product concept, named by several synonyms (the first is the most common)."""

    node_id: str
    parent_id: str
    synonyms: tuple[str, ...]
    materials: tuple[str, ...]
    features: tuple[str, ...]


@dataclass(frozen=True)
class Parent:
    node_id: str
    name: str
    brands: tuple[str, ...]
    settings: tuple[str, ...]
    leaves: tuple[Leaf, ...]


COLORS: tuple[str, ...] = (
    "black",
    "white",
    "grey",
    "red",
    "blue",
    "green",
    "navy",
    "beige",
    "brown",
    "pink",
    "yellow",
    "silver",
)

# Words that appear in titles of every category: lexical noise that a title-only BM25 cannot ignore.
TIER_WORDS: tuple[str, ...] = ("pro", "max", "plus", "mini", "lite", "set", "edition", "classic")
SERIES_WORDS: tuple[str, ...] = (
    "nova",
    "aero",
    "flex",
    "terra",
    "luna",
    "orbit",
    "summit",
    "pulse",
    "vista",
    "echo",
    "atlas",
    "zen",
    "apex",
    "drift",
    "halo",
    "core",
)
GENERIC_PHRASES: tuple[str, ...] = (
    "a great choice for everyday use",
    "built to last with a two year warranty",
    "a customer favourite this season",
    "designed with attention to detail",
    "easy to clean and simple to maintain",
    "a smart pick for gifts",
    "comes with free returns",
    "made for modern homes and busy lives",
)

# (synonyms, materials, features) per leaf; "|" separates the items of one field.
_LEAF_SPECS: dict[str, tuple[str, ...]] = {
    "furniture": (
        "sofa|couch|settee; leather|fabric|velvet|linen|boucle; reclining|modular|storage|sleeper|corner",
        "armchair|lounge chair|recliner; leather|fabric|velvet|rattan|wool; reclining|swivel|rocking|storage|wingback",
        "dining table|kitchen table|table; oak|walnut|glass|marble|metal; extendable|foldable|round|storage|set",
        "desk|writing desk|workstation; oak|walnut|metal|glass|bamboo; adjustable|standing|storage|foldable|corner",
        "bed frame|bed|bedstead; oak|metal|velvet|fabric|pine; storage|king size|headboard|platform|foldable",
        "wardrobe|closet|armoire; oak|pine|walnut|metal|fabric; mirrored|sliding doors|storage|portable|corner",
        "bookcase|bookshelf|shelving unit; oak|pine|metal|bamboo|walnut; adjustable|corner|ladder|storage|modular",
    ),
    "electronics": (
        "smartphone|phone|mobile phone; aluminum|glass|plastic|titanium|ceramic; 5g|dual sim|waterproof|fast charging|unlocked",
        "laptop|notebook|ultrabook; aluminum|carbon|plastic|magnesium|titanium; touchscreen|gaming|lightweight|convertible|pro",
        "headphones|headset|earphones; plastic|aluminum|leather|silicone|foam; wireless|noise cancelling|bluetooth|foldable|sport",
        "speaker|loudspeaker|boombox; plastic|fabric|wood|aluminum|rubber; portable|bluetooth|waterproof|wireless|smart",
        "camera|digital camera|camcorder; plastic|magnesium|aluminum|metal|rubber; 4k|waterproof|mirrorless|compact|stabilized",
        "tablet|tab|slate; aluminum|plastic|glass|titanium|ceramic; stylus|lightweight|kids|cellular|pro",
        "charger|power adapter|charging cable; plastic|braided nylon|silicone|aluminum|rubber; fast charging|wireless|portable|usb c|multiport",
        "phone case|phone cover|smartphone case; silicone|leather|plastic|aluminum|carbon; waterproof|wallet|rugged|magnetic|clear",
    ),
    "bags": (
        "backpack|rucksack|daypack; nylon|canvas|leather|polyester|recycled polyester; waterproof|anti theft|laptop|lightweight|rolling",
        "suitcase|luggage|trolley case; aluminum|polycarbonate|nylon|polyester|leather; expandable|carry on|spinner|lightweight|set",
        "handbag|purse|tote; leather|vegan leather|canvas|suede|straw; crossbody|quilted|zip|mini|oversized",
        "laptop bag|laptop case|laptop sleeve; nylon|leather|neoprene|felt|canvas; padded|waterproof|slim|shoulder strap|portable",
        "wallet|card holder|billfold; leather|vegan leather|carbon|canvas|aluminum; rfid blocking|slim|zip|coin pocket|bifold",
        "duffel bag|gym bag|holdall; nylon|canvas|leather|polyester|vinyl; waterproof|foldable|shoe compartment|rolling|lightweight",
    ),
    "kitchen": (
        "frying pan|skillet|pan; cast iron|stainless steel|aluminum|copper|carbon steel; nonstick|induction|oven safe|set|lid",
        "saucepan|pot|stockpot; stainless steel|copper|enamel|aluminum|cast iron; induction|nonstick|set|lid|pour spout",
        "knife set|chef knife|kitchen knives; stainless steel|ceramic|damascus steel|carbon steel|titanium; block|forged|serrated|magnetic|set",
        "kettle|teakettle|water boiler; stainless steel|glass|ceramic|copper|plastic; electric|cordless|whistling|temperature control|portable",
        "coffee maker|coffee machine|espresso machine; stainless steel|plastic|glass|aluminum|chrome; programmable|grinder|pod|milk frother|portable",
        "blender|smoothie maker|mixer; glass|plastic|stainless steel|aluminum|tritan; portable|cordless|high speed|personal|set",
    ),
    "outdoors": (
        "running shoes|sneakers|trainers; mesh|knit|leather|rubber|suede; lightweight|breathable|waterproof|trail|cushioned",
        "tent|camping shelter|canopy; nylon|polyester|canvas|ripstop|cotton; waterproof|pop up|lightweight|four person|portable",
        "yoga mat|exercise mat|fitness mat; rubber|cork|foam|jute|tpe; non slip|extra thick|foldable|portable|set",
        "bicycle|bike|cycle; aluminum|steel|carbon|titanium|chromoly; electric|folding|mountain|gravel|kids",
        "water bottle|flask|drinking bottle; stainless steel|glass|plastic|aluminum|silicone; insulated|leak proof|collapsible|filter|portable",
        "sleeping bag|sleep sack|bedroll; down|synthetic|fleece|nylon|cotton; lightweight|insulated|compact|waterproof|kids",
    ),
    "clothing": (
        "jacket|coat|parka; leather|wool|nylon|denim|down; waterproof|hooded|insulated|packable|slim fit",
        "sweater|jumper|pullover; wool|cotton|cashmere|merino|acrylic; crew neck|v neck|oversized|knitted|slim fit",
        "jeans|denim pants|trousers; denim|cotton|linen|corduroy|stretch denim; slim fit|straight leg|high waist|ripped|relaxed",
        "dress|gown|frock; cotton|linen|silk|satin|velvet; maxi|midi|sleeveless|wrap|floral",
        "hoodie|sweatshirt|hooded top; cotton|fleece|polyester|organic cotton|wool; zip|oversized|lightweight|cropped|set",
    ),
    "home": (
        "lamp|light|lantern; brass|ceramic|glass|metal|rattan; dimmable|portable|smart|led|set",
        "rug|carpet|floor mat; wool|jute|cotton|polypropylene|silk; washable|non slip|round|runner|handmade",
        "curtains|drapes|window panels; linen|velvet|cotton|polyester|sheer voile; blackout|thermal|set|grommet|washable",
        "pillow|cushion|throw pillow; cotton|velvet|linen|wool|faux fur; set|washable|memory foam|outdoor|decorative",
    ),
}

_PARENT_SPECS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "furniture",
        "Furniture",
        ("Nordhaven", "Oakridge", "Lumo", "Casa Verde", "Hygge Home", "Stellar"),
        ("living room", "bedroom", "home office", "small apartments"),
    ),
    (
        "electronics",
        "Electronics",
        ("Voltix", "Sonara", "Pixelon", "Kestrel", "Zentek", "Stellar"),
        ("work", "travel", "gaming", "streaming"),
    ),
    (
        "bags",
        "Bags and Luggage",
        ("Wanderly", "Kestrel", "Urbana", "Trailhead", "Carryon Co", "Lumo"),
        ("travel", "commuting", "weekend trips", "school"),
    ),
    (
        "kitchen",
        "Kitchen",
        ("Chefwell", "Copperline", "Ember", "Nordhaven", "Savora", "Zentek"),
        ("busy kitchens", "weekend cooking", "small kitchens", "family meals"),
    ),
    (
        "outdoors",
        "Sports and Outdoors",
        ("Trailhead", "Peakform", "Stride", "Kestrel", "Wildpine", "Apexa"),
        ("hiking", "the gym", "camping", "commuting"),
    ),
    (
        "clothing",
        "Clothing",
        ("Urbana", "Fernwood", "Modiste", "Peakform", "Northfold", "Lumo"),
        ("winter", "the office", "weekends", "evenings out"),
    ),
    (
        "home",
        "Home and Decor",
        ("Hygge Home", "Casa Verde", "Lumo", "Fernwood", "Nordhaven", "Glowcraft"),
        ("living room", "bedroom", "cosy evenings", "guest rooms"),
    ),
)


def _build_taxonomy() -> tuple[Parent, ...]:
    parents = []
    for parent_id, name, brands, settings in _PARENT_SPECS:
        leaves = []
        for index, spec in enumerate(_LEAF_SPECS[parent_id], start=1):
            synonyms, materials, features = (
                tuple(item.strip() for item in part.split("|")) for part in spec.split(";")
            )
            leaves.append(
                Leaf(f"{parent_id}-{index:02d}", parent_id, synonyms, materials, features)
            )
        parents.append(Parent(parent_id, name, brands, settings, tuple(leaves)))
    return tuple(parents)


@cache
def taxonomy() -> tuple[Parent, ...]:
    return _build_taxonomy()


@cache
def leaves() -> tuple[Leaf, ...]:
    return tuple(leaf for parent in taxonomy() for leaf in parent.leaves)


@cache
def brand_names() -> tuple[str, ...]:
    """Every brand, sorted; brand codes in the catalog truth index this tuple."""
    return tuple(sorted({b for parent in taxonomy() for b in parent.brands}))


def taxonomy_rows() -> list[dict[str, str | None]]:
    """The taxonomy as flat rows (node_id, parent_id, name), parents first, for tables and docs."""
    rows: list[dict[str, str | None]] = []
    for parent in taxonomy():
        rows.append({"node_id": parent.node_id, "parent_id": None, "name": parent.name})
        rows.extend(
            {"node_id": leaf.node_id, "parent_id": parent.node_id, "name": leaf.synonyms[0]}
            for leaf in parent.leaves
        )
    return rows
