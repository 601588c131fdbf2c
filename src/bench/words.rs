//! The word list random prompts are made of.

/// Short, frequent English words: one token each in the common BPE vocabularies.
#[rustfmt::skip]
pub const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "was", "he", "for", "it",
    "with", "as", "his", "on", "be", "at", "by", "had", "are", "but",
    "from", "or", "have", "an", "they", "which", "one", "you", "were", "all",
    "we", "her", "she", "there", "would", "their", "will", "when", "who", "him",
    "been", "has", "more", "if", "no", "out", "so", "what", "up", "can",
    "about", "into", "than", "them", "only", "other", "time", "new", "some", "could",
    "these", "two", "may", "first", "then", "do", "any", "like", "my", "now",
    "over", "such", "our", "man", "me", "even", "most", "made", "after", "also",
    "did", "many", "off", "before", "must", "well", "back", "through", "years", "much",
    "where", "your", "way", "down", "should", "because", "long", "each", "just", "state",
    "people", "those", "too", "how", "little", "good", "world", "make", "very", "year",
    "still", "see", "own", "work", "men", "day", "get", "here", "between", "both",
    "life", "being", "under", "never", "same", "another", "know", "while", "last", "might",
    "us", "great", "old", "off", "come", "since", "against", "go", "came", "right",
    "used", "take", "three", "place", "house", "use", "during", "without", "again", "home",
    "around", "small", "however", "found", "part", "general", "high", "upon", "school", "every",
    "don", "does", "got", "united", "left", "number", "course", "war", "until", "always",
    "away", "something", "fact", "water", "though", "less", "public", "put", "think", "almost",
    "hand", "enough", "far", "took", "head", "yet", "government", "system", "better", "set",
    "told", "nothing", "night", "end", "why", "called", "didn", "eyes", "find", "going",
    "look", "asked", "later", "knew", "point", "next", "program", "city", "business", "give",
    "group", "toward", "young", "days", "let", "room", "president", "side", "social", "present",
    "given", "several", "order", "national", "second", "possible", "rather", "per", "face", "among",
    "form", "often", "early", "white", "case", "john", "become", "large", "big", "need",
    "four", "within", "felt", "along", "children", "saw", "best", "church", "ever", "least",
    "power", "development", "light",
];
