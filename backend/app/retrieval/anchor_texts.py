"""Questions and the passages that answer them, on subjects far apart: the fixed yardstick
a new embedder is measured with (calibration.py). A question against its own passage shows
how close the embedder puts an answer; against the other passages, how close it puts
unrelated text. Both are properties of the embedder, not of any course, which is why they
are fixed here and not drawn from the materials (one-subject materials put "unrelated"
passages close together). Written for this purpose; not taken from any question set.
"""

ANCHOR_PAIRS: tuple[tuple[str, str], ...] = (
    ("Why does bread dough need to rise before baking?",
     "Yeast ferments the sugars in dough and releases carbon dioxide. The gas is trapped by the gluten "
     "network, so the dough expands; baking then sets that open structure into a light crumb."),
    ("What do mitochondria do in a cell?",
     "Mitochondria produce most of the cell's supply of ATP through cellular respiration, oxidising "
     "nutrients and using the energy released to drive ATP synthase."),
    ("What caused the fall of the Western Roman Empire?",
     "Historians point to a combination of causes: political instability, economic decline, reliance on "
     "mercenary armies and repeated invasions by Germanic peoples in the fifth century."),
    ("How does a for loop work in Python?",
     "A for loop takes the items of an iterable one at a time, binds each to the loop variable and runs "
     "the indented block once per item, stopping when the iterable is exhausted."),
    ("What is Newton's second law of motion?",
     "The net force acting on a body equals its mass times its acceleration, F = ma, so the same force "
     "accelerates a lighter object more."),
    ("What makes a chord major or minor?",
     "A major triad stacks a major third and then a minor third above its root; a minor triad puts the "
     "minor third first, which lowers the middle note by a semitone."),
    ("How is the offside rule applied in football?",
     "An attacker is offside when, as the ball is played to him, he is nearer the opponents' goal line "
     "than both the ball and the second-last defender, and he then takes part in play."),
    ("What is compound interest?",
     "Compound interest is paid on the original sum and on the interest already added to it, so the "
     "balance grows by a fixed percentage of an ever larger amount each period."),
    ("Why is the Nile river important to Egypt?",
     "Nearly all of Egypt's farmland and population lie along the Nile, whose water and yearly floods "
     "made agriculture possible in an otherwise desert country."),
    ("What is a covalent bond?",
     "In a covalent bond two atoms share one or more pairs of electrons, which holds them together; it "
     "is typical between non-metal atoms."),
    ("What does habeas corpus protect?",
     "Habeas corpus lets a detained person ask a court to examine whether the detention is lawful, "
     "protecting against imprisonment without legal justification."),
    ("What is impressionism in painting?",
     "Impressionist painters tried to capture the passing effect of light and colour, working quickly, "
     "often outdoors, with visible brush strokes and unblended colour."),
    ("How do vaccines create immunity?",
     "A vaccine exposes the immune system to a harmless form of a pathogen's antigens, so it produces "
     "antibodies and memory cells that respond quickly to a later infection."),
    ("Why do stars shine?",
     "In a star's core, nuclear fusion turns hydrogen into helium, and the energy released by this "
     "reaction is radiated away from the surface as light and heat."),
    ("What is a sonnet?",
     "A sonnet is a poem of fourteen lines in a fixed rhyme scheme, usually in iambic pentameter, such "
     "as the Petrarchan octave and sestet or Shakespeare's three quatrains and a couplet."),
    ("What does supply and demand determine?",
     "In a competitive market the price settles where the quantity buyers want equals the quantity "
     "sellers offer; a shift in either curve moves that equilibrium price."),
    ("How do children acquire their first language?",
     "Children learn their first language by hearing it used around them; they pass through babbling "
     "and one-word stages and infer grammatical patterns without formal teaching."),
    ("How does a suspension bridge carry its load?",
     "The deck hangs from vertical suspenders attached to main cables, which carry the load in tension "
     "over the towers to anchorages at each end."),
    ("What is classical conditioning?",
     "In classical conditioning a neutral stimulus, paired repeatedly with one that causes a reflex, "
     "comes to trigger the response by itself, as Pavlov's dogs salivated at a bell."),
    ("Why do farmers rotate their crops?",
     "Rotating crops between seasons restores soil nutrients, since legumes fix nitrogen, and breaks "
     "the cycle of pests and diseases that build up under one crop."),
    ("What is the Pythagorean theorem?",
     "In a right triangle the square of the hypotenuse equals the sum of the squares of the other two "
     "sides, a squared plus b squared equals c squared."),
    ("What does a router do in a network?",
     "A router forwards packets between networks, reading each packet's destination address and "
     "choosing the next hop from its routing table."),
    ("What is a standard deviation?",
     "The standard deviation measures how spread out values are around their mean: the square root of "
     "the average squared distance from the mean."),
    ("What is a primary key in a database table?",
     "A primary key is a column, or set of columns, whose value identifies each row uniquely; it cannot "
     "be null, and other tables refer to the row through it."),
)
