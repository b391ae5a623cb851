"""How people in each country write their names, addresses and phone numbers.

This table is the corpus's knowledge of the world, written from postal and numbering conventions
(Royal Mail, USPS, Deutsche Post and DIN 5008, La Poste, Correos, Poste Italiane, PostNL, An Post
and Eircode, Australia Post; Ofcom, NANP, Bundesnetzagentur, ARCEP, CNMC, AGCOM, ACM, ComReg,
ACMA numbering plans) and from how such data is typed in practice. It was written without looking
at Lethe's matcher or its demo generator, so that a corpus built from it measures the matcher on
forms it was not tuned for.

Postcode and phone patterns use placeholders: ``#`` any digit, ``@`` a digit 1-9, ``%`` a letter
used in UK inward codes, ``X`` an Eircode character, ``L`` a capital letter. Numbers in GB use
Ofcom's ranges reserved for drama, so no real subscriber is named.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Street:
    """A street as its sign reads (``full``) and as clerks abbreviate its type (``abbreviated``).

    ``abbreviated`` is None where the country does not abbreviate that street type in practice.
    """

    full: str
    abbreviated: str | None


@dataclass(frozen=True)
class City:
    name: str
    postcode_pattern: str
    region: str | None = None


@dataclass(frozen=True)
class PhonePlan:
    """One range of a numbering plan: the national significant number, grouped as it is written."""

    groups: tuple[str, ...]
    landline: bool


@dataclass(frozen=True)
class CountryProfile:
    code: str
    faker_locale: str
    country_names: tuple[str, ...]
    calling_code: str
    trunk_prefix: str
    # (canonical given name, short forms people and colleagues use for it)
    given_names: tuple[tuple[str, tuple[str, ...]], ...]
    middle_names: tuple[str, ...]
    family_names: tuple[str, ...]
    mail_domains: tuple[str, ...]
    work_tld: str
    streets: tuple[Street, ...]
    cities: tuple[City, ...]
    phone_plans: tuple[PhonePlan, ...]
    number_first: bool
    postcode_first: bool
    flat_before_street: bool
    flats: tuple[str, ...]
    house_number_range: tuple[int, int]
    number_joiner: str = " "
    account_labels: tuple[str, ...] = ("account", "Account no.", "acct", "customer no.")


GB = CountryProfile(
    code="GB",
    faker_locale="en_GB",
    country_names=("United Kingdom", "UK", "England"),
    calling_code="44",
    trunk_prefix="0",
    given_names=(
        ("William", ("Bill", "Will")),
        ("Elizabeth", ("Liz", "Beth")),
        ("Jonathan", ("Jon",)),
        ("Robert", ("Bob", "Rob")),
        ("Katherine", ("Kate",)),
        ("Margaret", ("Maggie",)),
        ("Thomas", ("Tom",)),
        ("Christopher", ("Chris",)),
        ("Rebecca", ("Becky",)),
        ("Edward", ("Ted", "Ed")),
        ("Zoë", ()),
        ("Siân", ()),
        ("Harriet", ()),
        ("Oliver", ("Ollie",)),
    ),
    middle_names=("James", "Anne", "Louise", "Quentin", "Mary", "Edward", "Rose"),
    family_names=(
        "Miller",
        "Smith-Jones",
        "Ashworth",
        "Pemberton",
        "Harrington",
        "Davies",
        "Clarke",
        "Fotheringham-Hale",
        "O'Connor",
        "Bêche",
        "Whitfield",
    ),
    mail_domains=("gmail.com", "outlook.com", "btinternet.com", "yahoo.co.uk"),
    work_tld="co.uk",
    streets=(
        Street("Mill Road", "Mill Rd"),
        Street("Church Street", "Church St"),
        Street("Station Road", "Station Rd"),
        Street("Victoria Avenue", "Victoria Ave"),
        Street("Kingsley Close", "Kingsley Cl"),
        Street("Albert Crescent", "Albert Cres"),
        Street("St John's Terrace", "St John's Terr"),
        Street("Queen's Gardens", "Queen's Gdns"),
        Street("Harrow Drive", "Harrow Dr"),
        Street("Nightingale Place", "Nightingale Pl"),
    ),
    cities=(
        City("Cambridge", "CB@ #%%"),
        City("Manchester", "M1# #%%"),
        City("Leeds", "LS@ #%%"),
        City("Bristol", "BS@ #%%"),
        City("Edinburgh", "EH@ #%%"),
        City("Cardiff", "CF1# #%%"),
        City("London", "SW1# #%%"),
        City("London", "N@ #%%"),
    ),
    phone_plans=(
        PhonePlan(("20", "7946", "0###"), True),
        PhonePlan(("161", "496", "0###"), True),
        PhonePlan(("113", "496", "0###"), True),
        PhonePlan(("7700", "900###"), False),
    ),
    number_first=True,
    postcode_first=False,
    flat_before_street=True,
    flats=("Flat 3", "Flat 12", "Flat 2B", "Apartment 7"),
    house_number_range=(1, 220),
)

US = CountryProfile(
    code="US",
    faker_locale="en_US",
    country_names=("USA", "United States", "US"),
    calling_code="1",
    trunk_prefix="",
    given_names=(
        ("William", ("Bill", "Billy")),
        ("Robert", ("Bob", "Bobby")),
        ("Jennifer", ("Jen", "Jenny")),
        ("Michael", ("Mike",)),
        ("Elizabeth", ("Liz", "Betsy")),
        ("James", ("Jim", "Jimmy")),
        ("Patricia", ("Patty", "Trish")),
        ("Richard", ("Rick", "Dick")),
        ("Daniel", ("Dan", "Danny")),
        ("Nicholas", ("Nick",)),
        ("Jonathan", ("Jon",)),
        ("Chloé", ()),
        ("DeShawn", ()),
    ),
    middle_names=("Quincy", "Lee", "Marie", "Ann", "Ray", "Lynn", "Wade"),
    family_names=(
        "Miller",
        "Johnson",
        "Rodríguez",
        "McAllister",
        "Nguyen",
        "O'Brien",
        "Washington",
        "DeLuca",
        "Kowalczyk",
        "St. Clair",
    ),
    mail_domains=("gmail.com", "yahoo.com", "outlook.com", "icloud.com"),
    work_tld="com",
    streets=(
        Street("Maple Street", "Maple St"),
        Street("Oak Avenue", "Oak Ave"),
        Street("Lincoln Boulevard", "Lincoln Blvd"),
        Street("Cedar Lane", "Cedar Ln"),
        Street("Lakeview Drive", "Lakeview Dr"),
        Street("Washington Road", "Washington Rd"),
        Street("Hillcrest Court", "Hillcrest Ct"),
        Street("North Main Street", "N Main St"),
        Street("Martin Luther King Jr Boulevard", "Martin Luther King Jr Blvd"),
    ),
    cities=(
        City("Springfield", "627##", "IL"),
        City("Portland", "972##", "OR"),
        City("Austin", "787##", "TX"),
        City("Columbus", "432##", "OH"),
        City("Denver", "802##", "CO"),
        City("Seattle", "981##", "WA"),
        City("Boston", "021##", "MA"),
        City("Madison", "537##", "WI"),
    ),
    phone_plans=tuple(
        PhonePlan((area, "@##", "####"), True)
        for area in ("212", "415", "617", "312", "206", "512", "303", "614")
    ),
    number_first=True,
    postcode_first=False,
    flat_before_street=False,
    flats=("Apt 4B", "Apt. 12", "Unit 5", "Suite 210"),
    house_number_range=(100, 9800),
)

DE = CountryProfile(
    code="DE",
    faker_locale="de_DE",
    country_names=("Deutschland", "Germany"),
    calling_code="49",
    trunk_prefix="0",
    given_names=(
        ("Jürgen", ()),
        ("Björn", ()),
        ("Johannes", ("Hannes", "Jo")),
        ("Katharina", ("Kathi", "Kati")),
        ("Alexander", ("Alex",)),
        ("Friedrich", ("Fritz",)),
        ("Susanne", ("Susi",)),
        ("Günther", ()),
        ("Maximilian", ("Max",)),
        ("Elisabeth", ("Lisa", "Sissi")),
        ("Jörg", ()),
        ("Franziska", ("Franzi",)),
    ),
    middle_names=("Maria", "Peter", "Heinrich", "Luise", "Karl"),
    family_names=(
        "Müller",
        "Schröder",
        "Weiß",
        "von Bülow",
        "Meyer-Lüdenscheidt",
        "Groß",
        "Köhler",
        "Schäfer",
        "Hoffmann",
        "zu Stolberg",
    ),
    mail_domains=("web.de", "gmx.de", "t-online.de", "gmail.com"),
    work_tld="de",
    streets=(
        Street("Lindenstraße", "Lindenstr."),
        Street("Goethestraße", "Goethestr."),
        Street("Schillerstraße", "Schillerstr."),
        Street("Bahnhofstraße", "Bahnhofstr."),
        Street("Berliner Straße", "Berliner Str."),
        Street("Friedrich-Ebert-Straße", "Friedrich-Ebert-Str."),
        Street("Müllerstraße", "Müllerstr."),
        Street("Kastanienallee", None),
        Street("Birkenweg", None),
        Street("Marktplatz", "Marktpl."),
        Street("Große Bleichen", None),
        Street("Königsallee", None),
        Street("Schönhauser Allee", None),
        Street("Hölderlinweg", None),
        Street("Mühlenstraße", "Mühlenstr."),
    ),
    cities=(
        City("Berlin", "10###"),
        City("Berlin", "12###"),
        City("München", "80###"),
        City("Köln", "50###"),
        City("Düsseldorf", "40###"),
        City("Nürnberg", "90###"),
        City("Frankfurt am Main", "60###"),
        City("Hamburg", "22###"),
        City("Lübeck", "235##"),
        City("Würzburg", "970##"),
        City("Göttingen", "370##"),
        City("Saarbrücken", "661##"),
    ),
    phone_plans=(
        PhonePlan(("30", "@#######"), True),
        PhonePlan(("89", "@#######"), True),
        PhonePlan(("221", "@######"), True),
        PhonePlan(("40", "@#######"), True),
        PhonePlan(("151", "@#######"), False),
        PhonePlan(("170", "@######"), False),
        PhonePlan(("176", "@#######"), False),
    ),
    number_first=False,
    postcode_first=True,
    flat_before_street=False,
    flats=("Whg. 5", "2. OG", "Hinterhaus", "App. 14"),
    house_number_range=(1, 180),
    account_labels=("Kundennummer", "Kundennr.", "Kd.-Nr.", "account"),
)

FR = CountryProfile(
    code="FR",
    faker_locale="fr_FR",
    country_names=("France",),
    calling_code="33",
    trunk_prefix="0",
    given_names=(
        ("Jean-Pierre", ("JP",)),
        ("François", ()),
        ("Hélène", ()),
        ("Frédéric", ("Fred",)),
        ("Élodie", ()),
        ("Stéphane", ("Steph",)),
        ("Amélie", ()),
        ("Alexandre", ("Alex",)),
        ("Benoît", ()),
        ("Marie-Claire", ()),
        ("Dominique", ("Dom",)),
        ("Maxime", ("Max",)),
    ),
    middle_names=("Marie", "Louis", "Anne", "Joseph"),
    family_names=(
        "Dupont-Moreau",
        "Lefèvre",
        "Le Gall",
        "Rousseau",
        "Ménard",
        "de La Fontaine",
        "Béziers",
        "Girard",
        "N'Diaye",
        "Lemaître",
    ),
    mail_domains=("orange.fr", "free.fr", "laposte.net", "gmail.com"),
    work_tld="fr",
    streets=(
        Street("rue de la Paix", None),
        Street("avenue Victor Hugo", "av. Victor Hugo"),
        Street("boulevard Haussmann", "bd Haussmann"),
        Street("rue de l'Église", None),
        Street("place de la République", "pl. de la République"),
        Street("avenue Émile Zola", "av. Émile Zola"),
        Street("impasse des Lilas", "imp. des Lilas"),
        Street("boulevard Jean Jaurès", "bd Jean Jaurès"),
        Street("chemin des Vignes", "ch. des Vignes"),
        Street("allée des Châtaigniers", "all. des Châtaigniers"),
        Street("rue du Général Leclerc", "rue du Gal Leclerc"),
    ),
    cities=(
        City("Paris", "7500@"),
        City("Paris", "7501@"),
        City("Lyon", "6900@"),
        City("Marseille", "1300@"),
        City("Toulouse", "31000"),
        City("Besançon", "25000"),
        City("Orléans", "45000"),
        City("Nîmes", "30000"),
    ),
    phone_plans=(
        PhonePlan(("1", "@#", "##", "##", "##"), True),
        PhonePlan(("4", "@#", "##", "##", "##"), True),
        PhonePlan(("6", "@#", "##", "##", "##"), False),
        PhonePlan(("7", "@#", "##", "##", "##"), False),
    ),
    number_first=True,
    postcode_first=True,
    flat_before_street=True,
    flats=("Appt 14", "Bât. B, Appt 3", "Résidence Les Pins", "Appt 2"),
    house_number_range=(1, 150),
    account_labels=("n° client", "réf. client", "compte", "account"),
)

ES = CountryProfile(
    code="ES",
    faker_locale="es_ES",
    country_names=("España", "Spain"),
    calling_code="34",
    trunk_prefix="",
    given_names=(
        ("José", ("Pepe",)),
        ("Francisco", ("Paco", "Curro")),
        ("Manuel", ("Manolo",)),
        ("Dolores", ("Lola",)),
        ("Concepción", ("Concha",)),
        ("Ignacio", ("Nacho",)),
        ("María José", ("Majo",)),
        ("Begoña", ()),
        ("Íñigo", ()),
        ("Jesús", ("Chus",)),
        ("Rocío", ()),
        ("Guadalupe", ("Lupe",)),
    ),
    middle_names=("Luis", "Antonio", "Isabel"),
    family_names=(
        "García Márquez",
        "Pérez-Reverte",
        "Martín López",
        "Núñez Sánchez",
        "Ibáñez Ruiz",
        "Gómez-Acebo",
        "Fernández de Córdoba",
        "Muñoz Castillo",
        "Ortega y Gasset",
    ),
    mail_domains=("hotmail.es", "gmail.com", "telefonica.net", "yahoo.es"),
    work_tld="es",
    streets=(
        Street("Calle de Alcalá", "C/ Alcalá"),
        Street("Calle Mayor", "C/ Mayor"),
        Street("Avenida de América", "Avda. de América"),
        Street("Paseo de la Castellana", "Pº de la Castellana"),
        Street("Calle del Príncipe de Vergara", "C/ Príncipe de Vergara"),
        Street("Plaza de España", "Pza. de España"),
        Street("Avenida de Andalucía", "Av. de Andalucía"),
        Street("Calle San Vicente Mártir", "C/ San Vicente Mártir"),
        Street("Gran Vía", None),
        Street("Ronda de Toledo", "Rda. de Toledo"),
    ),
    cities=(
        City("Madrid", "280##"),
        City("Barcelona", "080##"),
        City("Valencia", "460##"),
        City("Sevilla", "410##"),
        City("Málaga", "290##"),
        City("A Coruña", "150##"),
        City("Cádiz", "110##"),
        City("Córdoba", "140##"),
    ),
    phone_plans=(
        PhonePlan(("91", "@##", "##", "##"), True),
        PhonePlan(("93", "@##", "##", "##"), True),
        PhonePlan(("96", "@##", "##", "##"), True),
        PhonePlan(("6@#", "##", "##", "##"), False),
    ),
    number_first=False,
    postcode_first=True,
    flat_before_street=False,
    flats=("3º B", "2º izda.", "1º 2ª", "bajo A", "4º dcha."),
    house_number_range=(1, 200),
    number_joiner=", ",
    account_labels=("nº de cliente", "cuenta", "cliente", "account"),
)

IT = CountryProfile(
    code="IT",
    faker_locale="it_IT",
    country_names=("Italia", "Italy"),
    calling_code="39",
    trunk_prefix="",
    given_names=(
        ("Giuseppe", ("Beppe", "Peppe")),
        ("Francesco", ("Checco", "Franco")),
        ("Alessandro", ("Sandro", "Alex")),
        ("Niccolò", ()),
        ("Caterina", ("Rina",)),
        ("Giovanni", ("Gianni",)),
        ("Domenico", ("Mimmo",)),
        ("Elisabetta", ("Betta",)),
        ("Roberta", ()),
        ("Lucia", ()),
        ("Gianluca", ("Luca",)),
    ),
    middle_names=("Maria", "Giovanni", "Paolo"),
    family_names=(
        "D'Angelo",
        "De Luca",
        "Dell'Orto",
        "Bianchi",
        "Lo Bianco",
        "Esposito",
        "Cantù",
        "Fabbri-Santoro",
        "Di Stefano",
        "Nicolò",
    ),
    mail_domains=("libero.it", "tiscali.it", "gmail.com", "virgilio.it"),
    work_tld="it",
    streets=(
        Street("Via Garibaldi", "V. Garibaldi"),
        Street("Viale Europa", "V.le Europa"),
        Street("Piazza Navona", "P.za Navona"),
        Street("Corso Vittorio Emanuele II", "C.so Vittorio Emanuele II"),
        Street("Via della Libertà", "V. della Libertà"),
        Street("Via Niccolò Machiavelli", "V. Niccolò Machiavelli"),
        Street("Largo Argentina", "L.go Argentina"),
        Street("Via XX Settembre", "V. XX Settembre"),
        Street("Viale dei Mille", "V.le dei Mille"),
        Street("Piazza San Martino", "P.zza San Martino"),
    ),
    cities=(
        City("Roma", "001##", "RM"),
        City("Milano", "201##", "MI"),
        City("Napoli", "801##", "NA"),
        City("Torino", "101##", "TO"),
        City("Bologna", "401##", "BO"),
        City("Firenze", "501##", "FI"),
        City("Forlì", "4712@", "FC"),
    ),
    phone_plans=(
        PhonePlan(("06", "@###", "####"), True),
        PhonePlan(("02", "@###", "####"), True),
        PhonePlan(("011", "@##", "####"), True),
        PhonePlan(("055", "@##", "####"), True),
        PhonePlan(("347", "@##", "####"), False),
        PhonePlan(("333", "@##", "####"), False),
        PhonePlan(("320", "@##", "####"), False),
    ),
    number_first=False,
    postcode_first=True,
    flat_before_street=False,
    flats=("scala B, int. 7", "int. 3", "piano 2", "scala A int. 12"),
    house_number_range=(1, 200),
    account_labels=("cod. cliente", "codice cliente", "conto", "account"),
)

NL = CountryProfile(
    code="NL",
    faker_locale="nl_NL",
    country_names=("Nederland", "The Netherlands", "Netherlands"),
    calling_code="31",
    trunk_prefix="0",
    given_names=(
        ("Johannes", ("Hans", "Jan")),
        ("Cornelis", ("Kees",)),
        ("Wilhelmina", ("Mien", "Willy")),
        ("Pieter", ("Piet",)),
        ("Jacobus", ("Koos", "Jaap")),
        ("Geertruida", ("Truus",)),
        ("Maarten", ()),
        ("Anouk", ()),
        ("Daan", ()),
        ("Sanne", ()),
        ("Hendrik", ("Henk",)),
    ),
    middle_names=("Maria", "Jan", "Willem"),
    family_names=(
        "van der Berg",
        "de Vries",
        "van den Broek",
        "Jansen",
        "Bakker",
        "'t Hart",
        "van Dijk",
        "de Jong-Smit",
        "Brouwer",
        "van 't Hof",
    ),
    mail_domains=("ziggo.nl", "kpnmail.nl", "gmail.com", "hotmail.nl"),
    work_tld="nl",
    streets=(
        Street("Kalverstraat", "Kalverstr."),
        Street("Vondelstraat", "Vondelstr."),
        Street("Beethovenlaan", "Beethovenln"),
        Street("Dorpsstraat", "Dorpsstr."),
        Street("Prinsengracht", None),
        Street("Keizersgracht", None),
        Street("Burgemeester de Vlugtlaan", "Burg. de Vlugtlaan"),
        Street("Van Baerlestraat", "Van Baerlestr."),
        Street("Coolsingel", None),
    ),
    cities=(
        City("Amsterdam", "10@# LL"),
        City("Rotterdam", "30@# LL"),
        City("Utrecht", "35@# LL"),
        City("'s-Gravenhage", "25@# LL"),
        City("Eindhoven", "56@# LL"),
        City("Groningen", "97@# LL"),
    ),
    phone_plans=(
        PhonePlan(("20", "@##", "####"), True),
        PhonePlan(("10", "@##", "####"), True),
        PhonePlan(("30", "@##", "####"), True),
        PhonePlan(("6", "@#######"), False),
    ),
    number_first=False,
    postcode_first=True,
    flat_before_street=False,
    flats=("-2", " II", "hs", "A", "-3"),
    house_number_range=(1, 400),
    account_labels=("klantnummer", "klantnr.", "account"),
)

IE = CountryProfile(
    code="IE",
    faker_locale="en_IE",
    country_names=("Ireland",),
    calling_code="353",
    trunk_prefix="0",
    given_names=(
        ("Seán", ()),
        ("Siobhán", ()),
        ("Pádraig", ()),
        ("Niamh", ()),
        ("Aoife", ()),
        ("Ciarán", ()),
        ("Patrick", ("Paddy", "Pat")),
        ("Margaret", ("Peggy", "Maggie")),
        ("Michael", ("Mick", "Mike")),
        ("Catherine", ("Kate", "Cathy")),
        ("Bridget", ("Bríd", "Biddy")),
    ),
    middle_names=("Mary", "Joseph", "Anne", "Brendan"),
    family_names=(
        "O'Neill",
        "O'Sullivan",
        "McCarthy",
        "Fitzgerald",
        "Kavanagh",
        "Ó Súilleabháin",
        "Mac Giolla Phádraig",
        "Ní Bhriain",
        "O'Brien-Walsh",
        "Ó Briain",
    ),
    mail_domains=("eircom.net", "gmail.com", "hotmail.com"),
    work_tld="ie",
    streets=(
        Street("Main Street", "Main St"),
        Street("Ranelagh Road", "Ranelagh Rd"),
        Street("Dame Street", "Dame St"),
        Street("O'Connell Street", "O'Connell St"),
        Street("Patrick Street", "Patrick St"),
        Street("Shop Street", "Shop St"),
        Street("Griffith Avenue", "Griffith Ave"),
        Street("Sráid an Mhuilinn", None),
        Street("Eyre Square", "Eyre Sq"),
    ),
    cities=(
        City("Dublin 2", "D02 XXXX"),
        City("Dublin 6", "D06 XXXX"),
        City("Dublin 8", "D08 XXXX"),
        City("Cork", "T12 XXXX"),
        City("Galway", "H91 XXXX"),
        City("Limerick", "V94 XXXX"),
    ),
    phone_plans=(
        PhonePlan(("1", "@##", "####"), True),
        PhonePlan(("21", "@##", "####"), True),
        PhonePlan(("87", "@##", "####"), False),
        PhonePlan(("86", "@##", "####"), False),
        PhonePlan(("85", "@##", "####"), False),
    ),
    number_first=True,
    postcode_first=False,
    flat_before_street=True,
    flats=("Apartment 4", "Apt 12", "Apartment 31"),
    house_number_range=(1, 150),
)

AU = CountryProfile(
    code="AU",
    faker_locale="en_AU",
    country_names=("Australia",),
    calling_code="61",
    trunk_prefix="0",
    given_names=(
        ("Matthew", ("Matt",)),
        ("Jessica", ("Jess",)),
        ("Benjamin", ("Ben",)),
        ("Samantha", ("Sam",)),
        ("Nicholas", ("Nick",)),
        ("Joshua", ("Josh",)),
        ("Charlotte", ("Charlie", "Lottie")),
        ("Bronwyn", ("Bron",)),
        ("Renée", ()),
        ("Lachlan", ("Lachie",)),
    ),
    middle_names=("James", "Louise", "Grace", "Thomas"),
    family_names=(
        "Nguyen",
        "Papadopoulos",
        "O'Keefe",
        "Kowalski",
        "Anderson-Wright",
        "Mitchell",
        "Van Der Meer",
        "Ó Dálaigh",
        "MacKenzie",
    ),
    mail_domains=("bigpond.com", "optusnet.com.au", "gmail.com", "outlook.com"),
    work_tld="com.au",
    streets=(
        Street("George Street", "George St"),
        Street("Pitt Street", "Pitt St"),
        Street("Collins Street", "Collins St"),
        Street("Beach Road", "Beach Rd"),
        Street("Anzac Parade", "Anzac Pde"),
        Street("Pacific Highway", "Pacific Hwy"),
        Street("Ocean View Crescent", "Ocean View Cres"),
        Street("Wattle Avenue", "Wattle Ave"),
        Street("Bungarribee Road", "Bungarribee Rd"),
    ),
    cities=(
        City("Sydney", "20##", "NSW"),
        City("Melbourne", "30##", "VIC"),
        City("Brisbane", "40##", "QLD"),
        City("Perth", "60##", "WA"),
        City("Adelaide", "50##", "SA"),
        City("Hobart", "70##", "TAS"),
    ),
    phone_plans=(
        PhonePlan(("2", "9###", "####"), True),
        PhonePlan(("3", "9###", "####"), True),
        PhonePlan(("7", "3###", "####"), True),
        PhonePlan(("4@#", "###", "###"), False),
    ),
    number_first=True,
    postcode_first=False,
    flat_before_street=True,
    flats=("Unit 5", "Unit 12", "Unit 3"),
    house_number_range=(1, 400),
)

COUNTRIES: dict[str, CountryProfile] = {c.code: c for c in (GB, US, DE, FR, ES, IT, NL, IE, AU)}

# Lower-case particles that Dutch and German systems move behind the given name when sorting
# ("Berg, Pieter van der").
SORTING_PARTICLES = frozenset({"van", "der", "den", "de", "von", "zu", "'t", "ter", "ten", "het"})
