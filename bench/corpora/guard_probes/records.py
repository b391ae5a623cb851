"""Training records of a suppressed person: what locating found and a privacy officer confirmed.

Each suppressed person of the probe corpus gets 3-8 records of the organisation's training data
(support tickets, CRM notes and exports, order confirmations, chat transcripts, shipping and
delivery logs, invoices, e-mails with headers and signatures, call notes in the country's
language). Every record holds at least one identifier the person's request gave (that is how
locating found it; for a name-only request, the full name), and some of the person's other
identifiers written the way such records write them: "Name:" fields, family name first in CRM
exports, upper case on shipping labels, national or international phone numbers, addresses on
lines. A product that extracts further identifiers of the person from these records is measured on
them.

The records also hold identifiers that are NOT the person's, as real records do: the support
agents' names and work e-mails in signatures, the company's own support phone, e-mail and postal
address (one constant per country, in many records), couriers' drivers and their phones, and in
some records another customer (a duplicate found in the CRM and not merged, a parcel left with a
neighbour on the same street, a referral, a gift sent to someone else, a Cc). Every identifier
written in a record is labelled with its owner: the person's id, or a role (``OWNER_ROLES``).

Written without reading the product's extraction or matching code: its only interface is the
request's fields and plain text; its knowledge of the world is ``bench/corpora/countries.py``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from bench.corpora.countries import SORTING_PARTICLES, CountryProfile, PhonePlan

from .generate import fill_pattern, fold, format_address

if TYPE_CHECKING:
    from .generate import ProbePerson

KINDS = ("name", "email", "phone", "address")

#: Owners of identifiers in a record that are not the person's.
OWNER_ROLES = ("agent", "company", "courier", "other_customer", "neighbour")

#: How often each of the person's identifiers is shown in at least one of their records (the
#: request's identifiers are shown at least where they are the record's anchor).
SHOWN_SHARE = {"name": 0.75, "email": 0.72, "phone": 0.72, "address": 0.7}
#: How often a shown identifier is written in a given record besides the anchor.
PER_RECORD_SHARE = 0.5


class RecordMention(NamedTuple):
    """One identifier written in a record: its kind, the exact text, and whose it is."""

    kind: str
    written: str
    owner: str  # the suppressed person's id, or one of OWNER_ROLES


@dataclass
class TrainingRecord:
    record_id: str
    text: str
    mentions: list[RecordMention]
    record_type: str = ""
    language: str = "en"

    def person_mentions(self, person_id: str) -> list[RecordMention]:
        return [m for m in self.mentions if m.owner == person_id]


# The organisation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    name: str
    email: str


@dataclass(frozen=True)
class Company:
    """The organisation whose training data the records are, one per country (its constants)."""

    name: str
    domain: str
    phone_groups: tuple[str, ...]
    postal_address: str
    agents: tuple[Agent, ...]
    couriers: tuple[str, ...]

    @property
    def support_email(self) -> str:
        return f"support@{self.domain}"


def _agents(domain: str, *people: tuple[str, str]) -> tuple[Agent, ...]:
    return tuple(Agent(name, f"{local}@{domain}") for name, local in people)


#: GB numbers are in Ofcom's drama ranges (0808 157 0xxx freephone); the US one in 555-01xx; the
#: French one in ARCEP's range for fiction (01 99 00); the Australian one in ACMA's (02) 5550.
COMPANIES: dict[str, Company] = {
    "GB": Company(
        "Harbour & Finch Ltd",
        "harbourfinch.example",
        ("808", "157", "0412"),
        "Unit 4, Riverside Park, Wharf Road, Leeds LS9 8QW",
        _agents(
            "harbourfinch.example",
            ("Tom Baker", "t.baker"),
            ("Priya Raman", "p.raman"),
            ("Gareth Lewis", "g.lewis"),
            ("Hannah Okafor", "h.okafor"),
        ),
        ("Parcelwise", "SwiftDrop Couriers"),
    ),
    "US": Company(
        "Bluebird Outfitters Inc.",
        "bluebird-outfitters.example",
        ("617", "555", "0142"),
        "400 Harbor Street, Suite 12, Boston, MA 02110",
        _agents(
            "bluebird-outfitters.example",
            ("Kayla Brooks", "kayla.brooks"),
            ("Marcus Reed", "marcus.reed"),
            ("Ana Torres", "ana.torres"),
        ),
        ("RoadRunner Freight", "Metro Express"),
    ),
    "DE": Company(
        "Nordlicht Versand GmbH",
        "nordlicht-versand.example",
        ("800", "3301200"),
        "Hafenweg 7, 20457 Hamburg",
        _agents(
            "nordlicht-versand.example",
            ("Sabine Krüger", "s.krueger"),
            ("Tobias Wendt", "t.wendt"),
            ("Aylin Demir", "a.demir"),
        ),
        ("Blitzpaket", "ElbeKurier"),
    ),
    "FR": Company(
        "Maison Verdier SAS",
        "maison-verdier.example",
        ("1", "99", "00", "42", "17"),
        "18 rue des Entrepôts, 69007 Lyon",
        _agents(
            "maison-verdier.example",
            ("Camille Roux", "camille.roux"),
            ("Julien Marchand", "julien.marchand"),
            ("Inès Haddad", "ines.haddad"),
        ),
        ("ColisVite", "Rapid'Express"),
    ),
    "ES": Company(
        "Tiendas Solana S.L.",
        "tiendas-solana.example",
        ("900", "10", "20", "30"),
        "Calle de la Industria, 24, 28045 Madrid",
        _agents(
            "tiendas-solana.example",
            ("Lucía Herrera", "lucia.herrera"),
            ("Javier Molina", "javier.molina"),
            ("Marta Vidal", "marta.vidal"),
        ),
        ("EnvíaYa", "Mensajería Rayo"),
    ),
    "IT": Company(
        "Casa Fiorenza S.r.l.",
        "casafiorenza.example",
        ("02", "8901", "2345"),
        "Via dei Magazzini 9, 20139 Milano",
        _agents(
            "casafiorenza.example",
            ("Chiara Galli", "c.galli"),
            ("Matteo Rinaldi", "m.rinaldi"),
            ("Sara Conti", "s.conti"),
        ),
        ("PaccoLampo", "Corriere Celere"),
    ),
    "NL": Company(
        "Tulpenhuis B.V.",
        "tulpenhuis.example",
        ("20", "521", "4470"),
        "Havenweg 31, 1041 AB Amsterdam",
        _agents(
            "tulpenhuis.example",
            ("Femke Visser", "femke.visser"),
            ("Ruben Mulder", "ruben.mulder"),
            ("Lotte Smit", "lotte.smit"),
        ),
        ("Pakketpost", "SnelKoerier"),
    ),
    "IE": Company(
        "Shamrock Direct Ltd",
        "shamrockdirect.example",
        ("1", "906", "1180"),
        "Unit 9, Greenhills Business Park, Dublin 24, D24 K7X2",
        _agents(
            "shamrockdirect.example",
            ("Orla Byrne", "orla.byrne"),
            ("Declan Walsh", "declan.walsh"),
            ("Ciara Doyle", "ciara.doyle"),
        ),
        ("FastWay Couriers", "Liffey Logistics"),
    ),
    "AU": Company(
        "Southern Cross Goods Pty Ltd",
        "southerncross-goods.example",
        ("2", "5550", "4117"),
        "Level 3, 88 Harbour Street, Sydney NSW 2000",
        _agents(
            "southerncross-goods.example",
            ("Mia Thompson", "mia.thompson"),
            ("Jack Wilson", "jack.wilson"),
            ("Aroha Ngata", "aroha.ngata"),
        ),
        ("Wombat Couriers", "CityHop Express"),
    ),
}

#: Phone ranges the records draw couriers' and other customers' numbers from. GB: Ofcom's drama
#: ranges (other than those of the corpus's people for landlines); elsewhere the country's plan.
_GB_NOISE_PLANS = (
    PhonePlan(("117", "496", "0###"), True),
    PhonePlan(("121", "496", "0###"), True),
    PhonePlan(("131", "496", "0###"), True),
    PhonePlan(("7700", "900###"), False),
)

#: Drivers' names: couriers' staff come from everywhere.
_DRIVERS = (
    "Marek Nowak",
    "Dan Hughes",
    "Aisha Khan",
    "Mehmet Yilmaz",
    "Ionut Popescu",
    "Sofia Costa",
    "Luis Ortega",
    "Kwame Mensah",
    "Tomasz Wójcik",
    "Nadia Benali",
)

#: Extra family names for other customers, so they are not all the people's namesakes.
_OTHER_FAMILIES = {
    "GB": ("Thornton", "Okonkwo", "Patel", "Hughes", "Barraclough"),
    "US": ("Kim", "Hernandez", "Walker", "Brennan", "Okafor"),
    "DE": ("Wagner", "Becker", "Yıldız", "Lehmann", "Krause"),
    "FR": ("Martin", "Bernard", "Petit", "Benali", "Fontaine"),
    "ES": ("Romero Díaz", "Navarro Gil", "Torres Vega", "Serrano Ramos"),
    "IT": ("Ferrari", "Romano", "Colombo", "Ricci", "Marino"),
    "NL": ("Visser", "Meijer", "de Boer", "Mulder", "Bos"),
    "IE": ("Murphy", "Kelly", "Ryan", "Doyle", "Ó Ceallaigh"),
    "AU": ("Taylor", "Brown", "Singh", "Wilson", "Chen"),
}


# Languages -------------------------------------------------------------------------------------

_LANGUAGE = {"GB": "en", "US": "en", "IE": "en", "AU": "en", "DE": "de", "FR": "fr", "ES": "es"}
_LANGUAGE.update({"IT": "it", "NL": "nl"})

#: Share of a non-English country's records written in its language (the rest are in English:
#: the organisation's shared systems).
LOCAL_LANGUAGE_SHARE = 0.5

_PHRASES: dict[str, dict] = {
    "en": {
        "name": "Name",
        "email": "E-mail",
        "phone": "Tel",
        "mobile": "Mobile",
        "address": "Address",
        "delivery": "Delivery address",
        "bill_to": "Bill to",
        "ship_to": "Ship to",
        "customer": "Customer",
        "order": "Order",
        "notes": "Notes",
        "owner": "Owner",
        "from": "From",
        "to": "To",
        "subject": "Subject",
        "date": "Date",
        "ticket": "Ticket",
        "invoice": "Invoice",
        "total": "Total",
        "driver": "Driver",
        "sender": "Sender",
        "consignee": "Consignee",
        "occupier": "THE OCCUPIER",
        "web_form": "web form",
        "regards": ("Kind regards", "Best wishes", "Many thanks"),
        "customer_care": "Customer Care",
        "subjects": (
            "Parcel not delivered",
            "Refund request",
            "Wrong item received",
            "Change of address",
            "Cancel my subscription",
        ),
        "bodies": (
            "My parcel still hasn't arrived and the tracking hasn't moved since Monday.",
            "I returned the jacket two weeks ago and I'm still waiting for the refund.",
            "I received the wrong size, can you send a replacement?",
            "Please update my details, I have moved.",
            "Please cancel my subscription from next month.",
        ),
        "replies": (
            "Thank you for getting in touch. I have raised this with the courier and will update you within 48 hours.",
            "Sorry for the trouble. The refund has been issued and should reach your account in 3-5 working days.",
            "I have updated your details as requested.",
        ),
        "reply_from": "Reply from",
        "call_me": "You can reach me on {x}.",
        "my_email": "My e-mail is {x}.",
        "my_address": "I live at {x}.",
        "gift": "The order was a gift for {name}, please deliver it to {address}.",
        "merge_email": "Possible duplicate: {name} ({x}) - different customer, NOT merged.",
        "merge_phone": "Merged in error with {name}, tel. {x}; unmerged on {date}.",
        "referral": "I was referred to you by {name} <{x}>.",
        "neighbour": "Left with neighbour {name} at {address}.",
        "leave_with": "If nobody is home, leave parcels with neighbour {name} at {address}.",
        "out_for_delivery": "Out for delivery",
        "delivered": "Delivered, signed by",
        "attempted": "Delivery attempted, nobody home, card left",
        "driver_line": "driver {name}, {x}",
        "notify": "Notify",
        "dear": "Dear {x},",
        "dear_customer": "Dear customer,",
        "thanks_order": "Thank you for your order {order}. We'll let you know when it ships.",
        "questions": "Questions? Call us on {phone} or write to {email}.",
        "sms": "SMS to {x}: Your {company} order {order} has shipped. Track it in the app.",
        "packing_slip": "Packing slip - order {order}",
        "call_in": "Inbound call from {x}",
        "call_withheld": "Inbound call (number withheld)",
        "caller": "Caller gave their name as {x}.",
        "call_about": "Asked about order {order}, which is late.",
        "call_back": "Wants a call back on {x}.",
        "call_email": "Confirmation to go to {x}.",
        "call_address": "Confirmed the delivery address: {x}.",
        "payment_queries": "Payment queries",
        "chat": {
            "hello": "Hello, you're chatting with {agent} from {company}. How can I help?",
            "hi_name": "hi it's {x}, my order {order} hasn't arrived",
            "hi": "hi, my order {order} hasn't arrived",
            "ask_email": "Sorry to hear that. Could you confirm the e-mail address on the account?",
            "ask_phone": "Thanks. And a phone number we can reach you on?",
            "ask_address": "Is the delivery address still the one below?",
            "yes": "yes that's right",
            "courier": "The courier will call ahead; their driver's number is {x}.",
            "bye": "Thanks for chatting with us. Anything else?",
        },
    },
    "de": {
        "name": "Name",
        "email": "E-Mail",
        "phone": "Tel.",
        "mobile": "Mobil",
        "address": "Anschrift",
        "delivery": "Lieferadresse",
        "bill_to": "Rechnungsempfänger",
        "ship_to": "Lieferung an",
        "customer": "Kunde",
        "order": "Bestellung",
        "notes": "Notizen",
        "owner": "Betreuer",
        "from": "Von",
        "to": "An",
        "subject": "Betreff",
        "date": "Datum",
        "ticket": "Vorgang",
        "invoice": "Rechnung",
        "total": "Gesamtbetrag",
        "driver": "Fahrer",
        "sender": "Absender",
        "consignee": "Empfänger",
        "occupier": "AN DIE BEWOHNER",
        "web_form": "Kontaktformular",
        "regards": ("Mit freundlichen Grüßen", "Viele Grüße", "Beste Grüße"),
        "customer_care": "Kundenservice",
        "subjects": ("Paket nicht angekommen", "Erstattung", "Falscher Artikel", "Adressänderung"),
        "bodies": (
            "Mein Paket ist immer noch nicht da, die Sendungsverfolgung steht seit Montag still.",
            "Ich habe die Jacke vor zwei Wochen zurückgeschickt und warte noch auf die Erstattung.",
            "Ich habe die falsche Größe bekommen, können Sie mir Ersatz schicken?",
            "Bitte ändern Sie meine Daten, ich bin umgezogen.",
        ),
        "replies": (
            "Vielen Dank für Ihre Nachricht. Ich habe den Paketdienst kontaktiert und melde mich innerhalb von 48 Stunden.",
            "Entschuldigen Sie die Unannehmlichkeiten. Die Erstattung ist veranlasst.",
            "Ich habe Ihre Daten wie gewünscht geändert.",
        ),
        "reply_from": "Antwort von",
        "call_me": "Sie erreichen mich unter {x}.",
        "my_email": "Meine E-Mail-Adresse ist {x}.",
        "my_address": "Meine Anschrift: {x}.",
        "gift": "Die Bestellung ist ein Geschenk für {name}, bitte liefern an {address}.",
        "merge_email": "Mögliche Dublette: {name} ({x}) - andere Person, NICHT zusammengeführt.",
        "merge_phone": "Versehentlich zusammengeführt mit {name}, Tel. {x}; am {date} getrennt.",
        "referral": "Ich wurde von {name} <{x}> empfohlen.",
        "neighbour": "Beim Nachbarn {name}, {address}, abgegeben.",
        "leave_with": "Falls niemand da ist, Pakete bei Nachbar {name}, {address}, abgeben.",
        "out_for_delivery": "In Zustellung",
        "delivered": "Zugestellt, unterschrieben von",
        "attempted": "Zustellversuch, niemand angetroffen, Karte eingeworfen",
        "driver_line": "Fahrer {name}, {x}",
        "notify": "Benachrichtigung",
        "dear": "Hallo {x},",
        "dear_customer": "Sehr geehrte Kundin, sehr geehrter Kunde,",
        "thanks_order": "Vielen Dank für Ihre Bestellung {order}. Wir melden uns, sobald sie versandt ist.",
        "questions": "Fragen? Rufen Sie uns an unter {phone} oder schreiben Sie an {email}.",
        "sms": "SMS an {x}: Ihre {company}-Bestellung {order} ist unterwegs.",
        "packing_slip": "Lieferschein - Bestellung {order}",
        "call_in": "Eingehender Anruf von {x}",
        "call_withheld": "Eingehender Anruf (Nummer unterdrückt)",
        "caller": "Anrufer nannte sich {x}.",
        "call_about": "Fragt nach Bestellung {order}, die überfällig ist.",
        "call_back": "Bittet um Rückruf unter {x}.",
        "call_email": "Bestätigung bitte an {x}.",
        "call_address": "Lieferadresse bestätigt: {x}.",
        "payment_queries": "Fragen zur Zahlung",
        "chat": {
            "hello": "Hallo, hier ist {agent} von {company}. Wie kann ich helfen?",
            "hi_name": "hallo, hier ist {x}, meine bestellung {order} ist nicht angekommen",
            "hi": "hallo, meine bestellung {order} ist nicht angekommen",
            "ask_email": "Das tut mir leid. Wie lautet die E-Mail-Adresse des Kontos?",
            "ask_phone": "Danke. Unter welcher Nummer erreichen wir Sie?",
            "ask_address": "Ist die Lieferadresse noch diese?",
            "yes": "ja genau",
            "courier": "Der Fahrer ruft vorher an, seine Nummer ist {x}.",
            "bye": "Danke für Ihre Nachricht. Noch etwas?",
        },
    },
    "fr": {
        "name": "Nom",
        "email": "Courriel",
        "phone": "Tél.",
        "mobile": "Portable",
        "address": "Adresse",
        "delivery": "Adresse de livraison",
        "bill_to": "Facturé à",
        "ship_to": "Livrer à",
        "customer": "Client",
        "order": "Commande",
        "notes": "Notes",
        "owner": "Conseiller",
        "from": "De",
        "to": "À",
        "subject": "Objet",
        "date": "Date",
        "ticket": "Demande",
        "invoice": "Facture",
        "total": "Total TTC",
        "driver": "Livreur",
        "sender": "Expéditeur",
        "consignee": "Destinataire",
        "occupier": "À L'OCCUPANT",
        "web_form": "formulaire web",
        "regards": ("Cordialement", "Bien à vous", "Bonne journée"),
        "customer_care": "Service client",
        "subjects": (
            "Colis non livré",
            "Demande de remboursement",
            "Mauvais article",
            "Changement d'adresse",
        ),
        "bodies": (
            "Mon colis n'est toujours pas arrivé et le suivi n'a pas bougé depuis lundi.",
            "J'ai renvoyé la veste il y a deux semaines et j'attends toujours le remboursement.",
            "J'ai reçu la mauvaise taille, pouvez-vous m'envoyer un échange ?",
            "Merci de mettre à jour mes coordonnées, j'ai déménagé.",
        ),
        "replies": (
            "Merci de nous avoir contactés. J'ai relancé le transporteur et je reviens vers vous sous 48 heures.",
            "Désolée pour ce désagrément. Le remboursement a été effectué.",
            "J'ai mis à jour vos coordonnées.",
        ),
        "reply_from": "Réponse de",
        "call_me": "Vous pouvez me joindre au {x}.",
        "my_email": "Mon adresse e-mail : {x}.",
        "my_address": "J'habite au {x}.",
        "gift": "La commande est un cadeau pour {name}, à livrer au {address}.",
        "merge_email": "Doublon possible : {name} ({x}) - autre client, NON fusionné.",
        "merge_phone": "Fusionné par erreur avec {name}, tél. {x} ; séparé le {date}.",
        "referral": "C'est {name} <{x}> qui m'a recommandé votre boutique.",
        "neighbour": "Remis au voisin {name}, {address}.",
        "leave_with": "En cas d'absence, laisser les colis au voisin {name}, {address}.",
        "out_for_delivery": "En cours de livraison",
        "delivered": "Livré, signé par",
        "attempted": "Tentative de livraison, absent, avis de passage déposé",
        "driver_line": "livreur {name}, {x}",
        "notify": "Notification",
        "dear": "Bonjour {x},",
        "dear_customer": "Chère cliente, cher client,",
        "thanks_order": "Merci pour votre commande {order}. Nous vous préviendrons de son expédition.",
        "questions": "Des questions ? Appelez-nous au {phone} ou écrivez à {email}.",
        "sms": "SMS au {x} : votre commande {company} {order} a été expédiée.",
        "packing_slip": "Bon de livraison - commande {order}",
        "call_in": "Appel entrant du {x}",
        "call_withheld": "Appel entrant (numéro masqué)",
        "caller": "L'appelant s'est présenté comme {x}.",
        "call_about": "Appelle au sujet de la commande {order}, en retard.",
        "call_back": "Souhaite être rappelé au {x}.",
        "call_email": "Confirmation à envoyer à {x}.",
        "call_address": "Adresse de livraison confirmée : {x}.",
        "payment_queries": "Questions de paiement",
        "chat": {
            "hello": "Bonjour, ici {agent} de {company}. Comment puis-je vous aider ?",
            "hi_name": "bonjour c'est {x}, ma commande {order} n'est pas arrivée",
            "hi": "bonjour, ma commande {order} n'est pas arrivée",
            "ask_email": "Je suis désolée. Pouvez-vous confirmer l'adresse e-mail du compte ?",
            "ask_phone": "Merci. Un numéro où vous joindre ?",
            "ask_address": "L'adresse de livraison est-elle toujours celle-ci ?",
            "yes": "oui c'est ça",
            "courier": "Le livreur appellera avant de passer, son numéro : {x}.",
            "bye": "Merci de nous avoir contactés. Autre chose ?",
        },
    },
    "es": {
        "name": "Nombre",
        "email": "Correo",
        "phone": "Tel.",
        "mobile": "Móvil",
        "address": "Dirección",
        "delivery": "Dirección de entrega",
        "bill_to": "Facturar a",
        "ship_to": "Enviar a",
        "customer": "Cliente",
        "order": "Pedido",
        "notes": "Notas",
        "owner": "Gestor",
        "from": "De",
        "to": "Para",
        "subject": "Asunto",
        "date": "Fecha",
        "ticket": "Incidencia",
        "invoice": "Factura",
        "total": "Total",
        "driver": "Repartidor",
        "sender": "Remitente",
        "consignee": "Destinatario",
        "occupier": "AL OCUPANTE",
        "web_form": "formulario web",
        "regards": ("Un saludo", "Saludos cordiales", "Atentamente"),
        "customer_care": "Atención al cliente",
        "subjects": (
            "Paquete no entregado",
            "Solicitud de reembolso",
            "Artículo equivocado",
            "Cambio de dirección",
        ),
        "bodies": (
            "Mi paquete todavía no ha llegado y el seguimiento no se mueve desde el lunes.",
            "Devolví la chaqueta hace dos semanas y sigo esperando el reembolso.",
            "He recibido la talla equivocada, ¿me pueden enviar un cambio?",
            "Por favor, actualicen mis datos, me he mudado.",
        ),
        "replies": (
            "Gracias por escribirnos. He contactado con la mensajería y le informaré en 48 horas.",
            "Disculpe las molestias. El reembolso ya está tramitado.",
            "He actualizado sus datos.",
        ),
        "reply_from": "Respuesta de",
        "call_me": "Pueden llamarme al {x}.",
        "my_email": "Mi correo es {x}.",
        "my_address": "Mi dirección: {x}.",
        "gift": "El pedido es un regalo para {name}, entregar en {address}.",
        "merge_email": "Posible duplicado: {name} ({x}) - otro cliente, NO fusionado.",
        "merge_phone": "Fusionado por error con {name}, tel. {x}; separado el {date}.",
        "referral": "Me recomendó su tienda {name} <{x}>.",
        "neighbour": "Entregado al vecino {name}, {address}.",
        "leave_with": "Si no hay nadie, dejar los paquetes al vecino {name}, {address}.",
        "out_for_delivery": "En reparto",
        "delivered": "Entregado, firmado por",
        "attempted": "Intento de entrega, ausente, aviso dejado",
        "driver_line": "repartidor {name}, {x}",
        "notify": "Aviso",
        "dear": "Hola, {x}:",
        "dear_customer": "Estimado/a cliente:",
        "thanks_order": "Gracias por su pedido {order}. Le avisaremos cuando salga.",
        "questions": "¿Dudas? Llámenos al {phone} o escriba a {email}.",
        "sms": "SMS al {x}: su pedido {company} {order} ha salido.",
        "packing_slip": "Albarán - pedido {order}",
        "call_in": "Llamada entrante del {x}",
        "call_withheld": "Llamada entrante (número oculto)",
        "caller": "Dice llamarse {x}.",
        "call_about": "Pregunta por el pedido {order}, que va con retraso.",
        "call_back": "Pide que le devuelvan la llamada al {x}.",
        "call_email": "Enviar la confirmación a {x}.",
        "call_address": "Confirma la dirección de entrega: {x}.",
        "payment_queries": "Consultas de pago",
        "chat": {
            "hello": "Hola, soy {agent} de {company}. ¿En qué puedo ayudarle?",
            "hi_name": "hola soy {x}, mi pedido {order} no ha llegado",
            "hi": "hola, mi pedido {order} no ha llegado",
            "ask_email": "Lo siento. ¿Me confirma el correo de la cuenta?",
            "ask_phone": "Gracias. ¿Un teléfono de contacto?",
            "ask_address": "¿La dirección de entrega sigue siendo esta?",
            "yes": "sí, esa",
            "courier": "El repartidor llamará antes; su número es {x}.",
            "bye": "Gracias por contactarnos. ¿Algo más?",
        },
    },
    "it": {
        "name": "Nome",
        "email": "E-mail",
        "phone": "Tel.",
        "mobile": "Cell.",
        "address": "Indirizzo",
        "delivery": "Indirizzo di consegna",
        "bill_to": "Intestatario",
        "ship_to": "Spedire a",
        "customer": "Cliente",
        "order": "Ordine",
        "notes": "Note",
        "owner": "Referente",
        "from": "Da",
        "to": "A",
        "subject": "Oggetto",
        "date": "Data",
        "ticket": "Richiesta",
        "invoice": "Fattura",
        "total": "Totale",
        "driver": "Corriere",
        "sender": "Mittente",
        "consignee": "Destinatario",
        "occupier": "ALL'OCCUPANTE",
        "web_form": "modulo web",
        "regards": ("Cordiali saluti", "Distinti saluti", "Un saluto"),
        "customer_care": "Servizio clienti",
        "subjects": (
            "Pacco non consegnato",
            "Richiesta di rimborso",
            "Articolo sbagliato",
            "Cambio indirizzo",
        ),
        "bodies": (
            "Il mio pacco non è ancora arrivato e il tracciamento è fermo da lunedì.",
            "Ho reso la giacca due settimane fa e aspetto ancora il rimborso.",
            "Ho ricevuto la taglia sbagliata, potete mandarmi un cambio?",
            "Vi prego di aggiornare i miei dati, ho cambiato casa.",
        ),
        "replies": (
            "Grazie per averci scritto. Ho sollecitato il corriere e la aggiornerò entro 48 ore.",
            "Ci scusiamo per il disagio. Il rimborso è stato disposto.",
            "Ho aggiornato i suoi dati.",
        ),
        "reply_from": "Risposta di",
        "call_me": "Potete chiamarmi al {x}.",
        "my_email": "La mia e-mail è {x}.",
        "my_address": "Abito in {x}.",
        "gift": "L'ordine è un regalo per {name}, consegnare in {address}.",
        "merge_email": "Possibile duplicato: {name} ({x}) - altro cliente, NON unito.",
        "merge_phone": "Unito per errore con {name}, tel. {x}; separato il {date}.",
        "referral": "Mi ha consigliato il vostro negozio {name} <{x}>.",
        "neighbour": "Consegnato al vicino {name}, {address}.",
        "leave_with": "Se non c'è nessuno, lasciare i pacchi al vicino {name}, {address}.",
        "out_for_delivery": "In consegna",
        "delivered": "Consegnato, firmato da",
        "attempted": "Tentativo di consegna, assente, avviso lasciato",
        "driver_line": "corriere {name}, {x}",
        "notify": "Avviso",
        "dear": "Gentile {x},",
        "dear_customer": "Gentile cliente,",
        "thanks_order": "Grazie per il suo ordine {order}. La avviseremo alla spedizione.",
        "questions": "Domande? Chiamateci al {phone} o scrivete a {email}.",
        "sms": "SMS al {x}: il suo ordine {company} {order} è stato spedito.",
        "packing_slip": "Documento di trasporto - ordine {order}",
        "call_in": "Chiamata in entrata dal {x}",
        "call_withheld": "Chiamata in entrata (numero privato)",
        "caller": "Si è presentato come {x}.",
        "call_about": "Chiede dell'ordine {order}, in ritardo.",
        "call_back": "Chiede di essere richiamato al {x}.",
        "call_email": "Conferma da inviare a {x}.",
        "call_address": "Indirizzo di consegna confermato: {x}.",
        "payment_queries": "Domande sui pagamenti",
        "chat": {
            "hello": "Buongiorno, sono {agent} di {company}. Come posso aiutarla?",
            "hi_name": "salve sono {x}, il mio ordine {order} non è arrivato",
            "hi": "salve, il mio ordine {order} non è arrivato",
            "ask_email": "Mi dispiace. Può confermare l'e-mail dell'account?",
            "ask_phone": "Grazie. Un numero a cui contattarla?",
            "ask_address": "L'indirizzo di consegna è ancora questo?",
            "yes": "sì esatto",
            "courier": "Il corriere chiamerà prima; il suo numero è {x}.",
            "bye": "Grazie per averci contattato. Altro?",
        },
    },
    "nl": {
        "name": "Naam",
        "email": "E-mail",
        "phone": "Tel.",
        "mobile": "Mobiel",
        "address": "Adres",
        "delivery": "Afleveradres",
        "bill_to": "Factuuradres",
        "ship_to": "Verzenden naar",
        "customer": "Klant",
        "order": "Bestelling",
        "notes": "Notities",
        "owner": "Behandelaar",
        "from": "Van",
        "to": "Aan",
        "subject": "Onderwerp",
        "date": "Datum",
        "ticket": "Melding",
        "invoice": "Factuur",
        "total": "Totaal",
        "driver": "Bezorger",
        "sender": "Afzender",
        "consignee": "Ontvanger",
        "occupier": "AAN DE BEWONERS",
        "web_form": "webformulier",
        "regards": ("Met vriendelijke groet", "Groeten", "Hartelijke groet"),
        "customer_care": "Klantenservice",
        "subjects": ("Pakket niet bezorgd", "Terugbetaling", "Verkeerd artikel", "Adreswijziging"),
        "bodies": (
            "Mijn pakket is nog steeds niet aangekomen en de track & trace staat sinds maandag stil.",
            "Ik heb de jas twee weken geleden teruggestuurd en wacht nog op mijn geld.",
            "Ik heb de verkeerde maat gekregen, kunnen jullie een andere sturen?",
            "Wilt u mijn gegevens aanpassen? Ik ben verhuisd.",
        ),
        "replies": (
            "Bedankt voor uw bericht. Ik heb de vervoerder benaderd en laat binnen 48 uur iets weten.",
            "Excuses voor het ongemak. De terugbetaling is in gang gezet.",
            "Ik heb uw gegevens aangepast.",
        ),
        "reply_from": "Antwoord van",
        "call_me": "U kunt mij bereiken op {x}.",
        "my_email": "Mijn e-mailadres is {x}.",
        "my_address": "Mijn adres: {x}.",
        "gift": "De bestelling is een cadeau voor {name}, graag bezorgen op {address}.",
        "merge_email": "Mogelijk dubbel: {name} ({x}) - andere klant, NIET samengevoegd.",
        "merge_phone": "Per ongeluk samengevoegd met {name}, tel. {x}; op {date} gesplitst.",
        "referral": "Ik ben doorverwezen door {name} <{x}>.",
        "neighbour": "Afgegeven bij buren {name}, {address}.",
        "leave_with": "Als er niemand thuis is, pakketten afgeven bij buren {name}, {address}.",
        "out_for_delivery": "Onderweg",
        "delivered": "Bezorgd, getekend door",
        "attempted": "Bezorgpoging, niemand thuis, kaartje achtergelaten",
        "driver_line": "bezorger {name}, {x}",
        "notify": "Melding",
        "dear": "Beste {x},",
        "dear_customer": "Beste klant,",
        "thanks_order": "Bedankt voor uw bestelling {order}. We laten het weten zodra hij verzonden is.",
        "questions": "Vragen? Bel ons op {phone} of mail naar {email}.",
        "sms": "SMS naar {x}: uw {company}-bestelling {order} is verzonden.",
        "packing_slip": "Pakbon - bestelling {order}",
        "call_in": "Inkomend gesprek van {x}",
        "call_withheld": "Inkomend gesprek (anoniem nummer)",
        "caller": "Beller noemde zich {x}.",
        "call_about": "Vraagt naar bestelling {order}, die te laat is.",
        "call_back": "Wil teruggebeld worden op {x}.",
        "call_email": "Bevestiging graag naar {x}.",
        "call_address": "Afleveradres bevestigd: {x}.",
        "payment_queries": "Vragen over betalingen",
        "chat": {
            "hello": "Hallo, u chat met {agent} van {company}. Waarmee kan ik helpen?",
            "hi_name": "hoi met {x}, mijn bestelling {order} is niet aangekomen",
            "hi": "hoi, mijn bestelling {order} is niet aangekomen",
            "ask_email": "Vervelend. Kunt u het e-mailadres van het account bevestigen?",
            "ask_phone": "Dank u. Op welk nummer bent u bereikbaar?",
            "ask_address": "Is het afleveradres nog steeds dit?",
            "yes": "ja klopt",
            "courier": "De bezorger belt vooraf; zijn nummer is {x}.",
            "bye": "Bedankt voor het chatten. Nog iets?",
        },
    },
}

_MONTHS_EN = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


# Rendering -------------------------------------------------------------------------------------


def phone_forms(groups: tuple[str, ...], country: CountryProfile) -> dict[str, str]:
    """The ways records write one phone number (national significant number in ``groups``)."""
    cc, trunk = country.calling_code, country.trunk_prefix
    nsn = "".join(groups)
    forms = {
        "national": trunk + " ".join(groups),
        "international": f"+{cc} " + " ".join(groups),
        "e164": f"+{cc}{nsn}",
        "compact": trunk + nsn,
        "double_zero": f"00{cc} " + " ".join(groups),
    }
    if trunk:
        forms["trunk_brackets"] = f"+{cc} ({trunk}){' '.join(groups)}"
    if country.code == "US" and len(groups) == 3:
        forms["national"] = f"({groups[0]}) {groups[1]}-{groups[2]}"
        forms["dashes"] = "-".join(groups)
        forms["international"] = f"+1 {groups[0]}-{groups[1]}-{groups[2]}"
        forms["double_zero"] = f"001 {groups[0]} {groups[1]} {groups[2]}"
    if country.code in ("GB", "AU") and len(groups) > 2:
        forms["area_brackets"] = f"({trunk}{groups[0]}) {' '.join(groups[1:])}"
    if country.code == "DE":
        forms["slashes"] = f"{trunk}{groups[0]}/{''.join(groups[1:])}"
    return forms


def sorting_name(given: str, family: str) -> str:
    """Family name first, as CRM exports and lists sort it; Dutch/German particles go behind."""
    words = family.split()
    particles = []
    while len(words) > 1 and words[0] in SORTING_PARTICLES:
        particles.append(words.pop(0))
    tail = f" {' '.join(particles)}" if particles else ""
    return f"{' '.join(words)}, {given}{tail}"


class _Names:
    """Other people's names, e-mails, phones and addresses, drawn without touching the person's."""

    def __init__(
        self, person: ProbePerson, country: CountryProfile, rng: random.Random, taken: frozenset[str]
    ) -> None:
        self.person = person
        self.country = country
        self.rng = rng
        self.used_phones = set(taken) | {person.phone_nsn}
        self.used_emails = {e.casefold() for e in taken if "@" in e} | {person.email.casefold()}
        self.used_names = {_key(person.full_name)} | {_key(a.name) for a in COMPANIES[country.code].agents}
        self.used_names |= {_key(d) for d in _DRIVERS}

    def fill(self, pattern: str) -> str:
        return fill_pattern(pattern, self.rng)

    def phone(self, *, mobile: bool | None = None) -> tuple[str, ...]:
        plans = _GB_NOISE_PLANS if self.country.code == "GB" else self.country.phone_plans
        if mobile is not None:
            plans = tuple(p for p in plans if p.landline != mobile) or plans
        while True:
            groups = tuple(self.fill(g) for g in self.rng.choice(plans).groups)
            if "".join(groups) not in self.used_phones:
                self.used_phones.add("".join(groups))
                return groups

    def name(self) -> tuple[str, str]:
        while True:
            given = self.rng.choice(self.country.given_names)[0]
            family = self.rng.choice(self.country.family_names + _OTHER_FAMILIES[self.country.code])
            if family == self.person.family or _key(f"{given} {family}") in self.used_names:
                continue
            self.used_names.add(_key(f"{given} {family}"))
            return given, family

    def email(self, given: str, family: str) -> str:
        g = re.sub(r"[^a-z]", "", fold(given).lower())
        f = re.sub(r"[^a-z]", "", fold(family).lower())
        while True:
            local = self.rng.choice(
                [
                    f"{g}.{f}",
                    f"{g[0]}{f}{self.rng.randint(1, 99)}",
                    f"{f}.{g}",
                    f"{g}{self.rng.randint(60, 99)}",
                ]
            )
            email = f"{local}@{self.rng.choice(self.country.mail_domains)}"
            if email.casefold() not in self.used_emails:
                self.used_emails.add(email.casefold())
                return email

    def street_line(self, street: str, number: int) -> str:
        if self.country.number_first:
            return f"{number} {street}"
        return f"{street}{self.country.number_joiner}{number}"

    def address(self) -> str:
        """Another customer's address, in one line: another street or another city."""
        while True:
            street = self.rng.choice(self.country.streets).full
            city = self.rng.choice(self.country.cities)
            low, high = self.country.house_number_range
            number = self.rng.randint(low, min(high, 150))
            if street == self.person.street and city.name == self.person.city:
                continue
            postcode = self.fill(city.postcode_pattern)
            line = self.street_line(street, number)
            if self.country.postcode_first:
                return f"{line}, {postcode} {city.name}"
            if city.region and self.country.code == "US":
                return f"{line}, {city.name}, {city.region} {postcode}"
            return f"{line}, {city.name} {postcode}"

    def neighbour_number(self) -> int:
        low, high = self.country.house_number_range
        for step in self.rng.sample([1, 2, 3, -1, -2, 4, 6], 7):
            number = self.person.house_number + step
            if low <= number <= high:
                return number
        return self.person.house_number + 1


def _key(name: str) -> str:
    return fold(name).casefold()


class _Record:
    """One record being written: renders identifiers, labels each one it writes."""

    def __init__(
        self,
        person: ProbePerson,
        country: CountryProfile,
        company: Company,
        rng: random.Random,
        names: _Names,
        *,
        kinds: set[str],
        anchor: str,
        language: str,
    ) -> None:
        self.p = person
        self.c = country
        self.company = company
        self.rng = rng
        self.names = names
        self.kinds = kinds
        self.anchor = anchor
        self.anchor_pending = True
        self.language = language
        self.t = _PHRASES[language]
        self.mentions: list[RecordMention] = []
        self.agents = [a for a in company.agents if _key(a.name) != _key(person.full_name)]

    # labelling -------------------------------------------------------------------------------
    def mark(self, kind: str, written: str, owner: str) -> str:
        self.mentions.append(RecordMention(kind, written, owner))
        return written

    def _anchor_now(self, kind: str) -> bool:
        if kind == self.anchor and self.anchor_pending:
            self.anchor_pending = False
            return True
        return False

    def has(self, kind: str) -> bool:
        return kind in self.kinds

    # the person ------------------------------------------------------------------------------
    def name(self, style: str = "natural") -> str:
        p = self.p
        if self._anchor_now("name") and style not in ("natural", "upper", "request", "upper_folded"):
            style = self.rng.choice(["natural", "request"])
        natural = f"{p.given} {p.family}"
        if p.middle and self.rng.random() < 0.3:
            natural = f"{p.given} {p.middle} {p.family}"
        if style == "request":
            written = p.request["names"][0] if p.request.get("names") else natural
        elif style == "natural":
            written = natural
        elif style == "upper":
            written = natural.upper()
        elif style == "upper_folded":
            written = fold(natural).upper()
        elif style == "sorting":
            written = sorting_name(p.given, p.family)
        elif style == "sorting_upper":
            written = sorting_name(p.given, p.family).upper()
        elif style == "family_upper":
            written = f"{p.family.upper()} {p.given}"
        elif style == "nickname":
            written = f"{self.rng.choice(p.nicknames)} {p.family}" if p.nicknames else natural
        elif style == "initial":
            written = f"{p.given[0]}. {p.family}"
        else:
            raise ValueError(style)
        return self.mark("name", written, p.person_id)

    def name_any(self, *styles: str) -> str:
        return self.name(self.rng.choice(styles))

    def email(self, style: str = "plain") -> str:
        e = self.p.email
        self._anchor_now("email")
        if style == "request" and self.p.request.get("emails"):
            written = self.p.request["emails"][0]
        elif style == "upper":
            written = e.upper()
        elif style == "typed" and self.rng.random() < 0.3:
            written = e[0].upper() + e[1:]
        else:
            written = e
        return self.mark("email", written, self.p.person_id)

    def phone(self, *styles: str) -> str:
        self._anchor_now("phone")
        forms = phone_forms(self.p.phone_groups, self.c)
        if self.p.request.get("phones"):
            forms["request"] = self.p.request["phones"][0]
        usable = [s for s in styles if s in forms] or ["national", "international", "request"]
        usable = [s for s in usable if s in forms]
        return self.mark("phone", forms[self.rng.choice(usable)], self.p.person_id)

    def address(self, style: str = "line") -> str:
        p, c = self.p, self.c
        if self._anchor_now("address") and style not in ("line", "lines", "upper_lines", "request"):
            # Locating found the record by the whole address: keep postcode, country, full street.
            style = {"no_country_lines": "lines"}.get(style, "line")
        if style == "request" and p.request.get("addresses"):
            written = p.request["addresses"][0]
        elif style in ("line", "request"):
            written = format_address(p, c)
        elif style == "lines":
            written = format_address(p, c, separator="\n")
        elif style == "upper_lines":
            written = format_address(p, c, separator="\n").upper()
            if self.rng.random() < 0.4:
                written = fold(written)
        elif style == "abbreviated":
            written = format_address(p, c, abbreviated=True)
        elif style == "no_country":
            written = format_address(p, c, country_line=False)
        elif style == "no_country_lines":
            written = format_address(p, c, country_line=False, separator="\n")
        else:
            raise ValueError(style)
        return self.mark("address", written, p.person_id)

    # everyone else ---------------------------------------------------------------------------
    def agent(self) -> Agent:
        return self.rng.choice(self.agents)

    def agent_name(self, agent: Agent) -> str:
        return self.mark("name", agent.name, "agent")

    def agent_email(self, agent: Agent) -> str:
        return self.mark("email", agent.email, "agent")

    def company_phone(self) -> str:
        forms = phone_forms(self.company.phone_groups, self.c)
        return self.mark("phone", forms[self.rng.choice(["national", "international"])], "company")

    def company_email(self, mailbox: str = "support") -> str:
        return self.mark("email", f"{mailbox}@{self.company.domain}", "company")

    def company_address(self) -> str:
        return self.mark("address", self.company.postal_address, "company")

    def courier_phone(self) -> str:
        forms = phone_forms(self.names.phone(mobile=True), self.c)
        return self.mark("phone", forms[self.rng.choice(["national", "international", "compact"])], "courier")

    def driver(self) -> str:
        drivers = [d for d in _DRIVERS if _key(d) != _key(self.p.full_name)]
        return self.mark("name", self.rng.choice(drivers), "courier")

    def other(self, role: str = "other_customer") -> dict[str, str]:
        given, family = self.names.name()
        phone = phone_forms(self.names.phone(), self.c)
        return {
            "name": f"{given} {family}",
            "email": self.names.email(given, family),
            "phone": phone[self.rng.choice(["national", "international"])],
            "address": self.names.address(),
            "role": role,
        }

    def other_mark(self, other: dict[str, str], kind: str) -> str:
        return self.mark(kind, other[kind], other["role"])

    def neighbour(self) -> tuple[str, str]:
        given, family = self.names.name()
        name = self.mark("name", f"{given} {family}", "neighbour")
        address = self.mark(
            "address", self.names.street_line(self.p.street, self.names.neighbour_number()), "neighbour"
        )
        return name, address

    # dates and numbers -----------------------------------------------------------------------
    def date(self, style: str | None = None) -> str:
        year, month, day = self.rng.randint(2021, 2024), self.rng.randint(1, 12), self.rng.randint(1, 28)
        if style == "iso":
            return f"{year}-{month:02d}-{day:02d} {self.rng.randint(7, 20):02d}:{self.rng.randint(0, 59):02d}"
        if self.language == "en":
            if self.c.code == "US":
                return f"{_MONTHS_EN[month - 1]} {day}, {year}"
            return f"{day} {_MONTHS_EN[month - 1]} {year}"
        if self.language == "de":
            return f"{day:02d}.{month:02d}.{year}"
        if self.language == "nl":
            return f"{day:02d}-{month:02d}-{year}"
        return f"{day:02d}/{month:02d}/{year}"

    def topic(self) -> int:
        """What the customer wrote about: an index into the language's subjects and bodies."""
        return self.rng.randrange(len(self.t["subjects"]))

    def order_no(self) -> str:
        return self.rng.choice(
            [f"#{self.rng.randint(100000, 999999)}", f"ORD-{self.rng.randint(10000, 99999)}"]
        )


# Record types ----------------------------------------------------------------------------------


def _signature(r: _Record, agent: Agent) -> list[str]:
    lines = [f"{r.rng.choice(r.t['regards'])},", r.agent_name(agent)]
    lines.append(f"{r.company.name} {r.t['customer_care']}")
    contact = [r.agent_email(agent)] if r.rng.random() < 0.7 else []
    if r.rng.random() < 0.8:
        contact.append(r.company_phone())
    if r.rng.random() < 0.5:
        contact.append(r.company_email())
    if contact:
        lines.append(" | ".join(contact))
    return lines


def _support_ticket(r: _Record) -> list[str]:
    t = r.t
    topic = r.topic()
    lines = [f"{t['ticket']} {r.rng.randint(10000, 99999)} · {r.date('iso')}"]
    lines.append(f"{t['subject']}: {t['subjects'][topic]}")
    if r.has("email"):
        if r.has("name") and r.rng.random() < 0.7:
            display = r.name_any("natural", "sorting")
            display = f'"{display}"' if "," in display else display
            lines.append(f"{t['from']}: {display} <{r.email('typed')}>")
        else:
            lines.append(f"{t['from']}: {r.email('typed')}")
    elif r.has("name"):
        lines.append(f"{t['from']}: {r.name_any('natural', 'upper', 'sorting')} ({t['web_form']})")
    else:
        lines.append(f"{t['from']}: {t['web_form']}")
    lines.append("")
    lines.append(t["bodies"][topic])
    if r.has("phone"):
        lines.append(t["call_me"].format(x=r.phone("national", "international", "request", "compact")))
    if r.has("address"):
        lines.append(t["my_address"].format(x=r.address(r.rng.choice(["line", "abbreviated", "no_country"]))))
    if r.rng.random() < 0.2:
        other = r.other()
        lines.append(
            t["gift"].format(name=r.other_mark(other, "name"), address=r.other_mark(other, "address"))
        )
    if r.has("name") and not any(m.kind == "name" and m.owner == r.p.person_id for m in r.mentions):
        lines.append(r.name("natural"))
    lines.append("")
    agent = r.agent()
    lines.append(f"{t['reply_from']} {r.agent_name(agent)}:")
    lines.append(t["replies"][_REPLY_TO_TOPIC[topic]])
    lines.extend(_signature(r, agent))
    return lines


def _crm_note(r: _Record) -> list[str]:
    t = r.t
    agent = r.agent()
    if r.rng.random() < 0.35:
        # A CSV export row, family name first.
        header = ["contact_id", "name"]
        row = [f"C{r.rng.randint(100000, 999999)}", f'"{r.name("sorting")}"' if r.has("name") else '""']
        for kind, label in (("email", "email"), ("phone", "phone"), ("address", "address")):
            header.append(label)
            if r.has(kind):
                value = {
                    "email": lambda: r.email("plain"),
                    "phone": lambda: r.phone("e164", "international", "compact", "national"),
                    "address": lambda: f'"{r.address("line")}"',
                }[kind]()
                row.append(value)
            else:
                row.append("")
        header.append("owner")
        row.append(r.agent_email(agent))
        lines = ["CRM export " + r.date("iso"), ";".join(header), ";".join(row)]
    else:
        lines = [f"CRM · {t['customer']} C-{r.rng.randint(100000, 999999)}"]
        if r.has("name"):
            lines.append(f"{t['name']}: {r.name_any('sorting', 'sorting', 'sorting_upper', 'natural')}")
        if r.has("email"):
            lines.append(f"{t['email']}: {r.email('plain')}")
        if r.has("phone"):
            label = t["mobile"] if r.rng.random() < 0.5 else t["phone"]
            lines.append(
                f"{label}: {r.phone('national', 'international', 'e164', 'slashes', 'area_brackets')}"
            )
        if r.has("address"):
            lines.append(f"{t['address']}: {r.address(r.rng.choice(['line', 'abbreviated', 'no_country']))}")
        lines.append(f"{t['owner']}: {r.agent_name(agent)} ({r.agent_email(agent)})")
    notes = [f'"{t["bodies"][r.topic()]}"']
    if r.rng.random() < 0.35:
        other = r.other()
        if r.rng.random() < 0.5:
            notes.append(
                t["merge_email"].format(name=r.other_mark(other, "name"), x=r.other_mark(other, "email"))
            )
        else:
            notes.append(
                t["merge_phone"].format(
                    name=r.other_mark(other, "name"), x=r.other_mark(other, "phone"), date=r.date()
                )
            )
    if r.rng.random() < 0.1:
        name, address = r.neighbour()
        notes.append(t["leave_with"].format(name=name, address=address))
    lines.append(f"{t['notes']}: " + " ".join(notes))
    return lines


def _order_confirmation(r: _Record) -> list[str]:
    t = r.t
    order = r.order_no()
    if r.has("email"):
        lines = [
            f"{t['from']}: {r.company.name} <{r.company_email('orders')}>",
            f"{t['to']}: {r.email('plain')}",
            f"{t['subject']}: {t['order']} {order}",
            "",
            t["dear"].format(x=r.name("natural")) if r.has("name") else t["dear_customer"],
            t["thanks_order"].format(order=order),
        ]
    elif r.has("phone"):
        lines = [
            r.date("iso"),
            t["sms"].format(
                x=r.phone("e164", "international", "national"), company=r.company.name, order=order
            ),
        ]
        if r.has("name"):
            lines.append(f"{t['customer']}: {r.name_any('natural', 'sorting')}")
    else:
        lines = [t["packing_slip"].format(order=order)]
        if r.has("name"):
            lines.append(r.name_any("natural", "upper"))
    if r.has("address"):
        lines += ["", f"{t['delivery']}:", r.address(r.rng.choice(["lines", "lines", "line"]))]
    if r.has("phone") and not any(m.kind == "phone" and m.owner == r.p.person_id for m in r.mentions):
        lines.append(f"{t['phone']}: {r.phone('national', 'international', 'area_brackets', 'dashes')}")
    if r.rng.random() < 0.3:
        courier = r.rng.choice(r.company.couriers)
        lines.append(f"{courier}: {t['driver_line'].format(name=r.driver(), x=r.courier_phone())}")
    lines.append("")
    lines.append(t["questions"].format(phone=r.company_phone(), email=r.company_email()))
    return lines


def _chat(r: _Record) -> list[str]:
    t, chat = r.t, r.t["chat"]
    agent = r.agent()
    clock = [r.rng.randint(8, 19), r.rng.randint(0, 50)]

    def stamp() -> str:
        clock[1] += r.rng.randint(0, 2)
        return f"[{clock[0]:02d}:{min(clock[1], 59):02d}]"

    def says(line: str) -> str:
        # The chat tool shows the agent's full name on every line: each is a mention.
        return f"{stamp()} {r.agent_name(agent)}: {line}"

    who = t["customer"]
    lines = [
        f"{stamp()} {r.agent_name(agent)}: "
        + chat["hello"].format(agent=r.agent_name(agent), company=r.company.name)
    ]
    order = r.order_no()
    if r.has("name"):
        lines.append(
            f"{stamp()} {who}: "
            + chat["hi_name"].format(x=r.name_any("natural", "nickname", "request"), order=order)
        )
    else:
        lines.append(f"{stamp()} {who}: " + chat["hi"].format(order=order))
    if r.has("email"):
        lines.append(says(chat["ask_email"]))
        lines.append(f"{stamp()} {who}: {r.email('typed')}")
    if r.has("phone"):
        lines.append(says(chat["ask_phone"]))
        lines.append(f"{stamp()} {who}: {r.phone('compact', 'national', 'request', 'international')}")
    if r.has("address"):
        lines.append(says(f"{chat['ask_address']} {r.address('line')}"))
        lines.append(f"{stamp()} {who}: {chat['yes']}")
    if r.rng.random() < 0.4:
        lines.append(says(chat["courier"].format(x=r.courier_phone())))
    lines.append(says(chat["bye"]))
    return lines


def _shipping_log(r: _Record) -> list[str]:
    t = r.t
    courier = r.rng.choice(r.company.couriers)
    tracking = f"{r.rng.choice(['JD', 'PW', 'SD', 'TX'])}{r.rng.randint(10**11, 10**12 - 1)}"
    lines = [f"{courier.upper()} · {tracking}"]
    lines.append(f"{t['sender'].upper()}: {r.company.name.upper()} · {r.company_phone()}")
    lines.append(f"{t['consignee'].upper()}:")
    lines.append(r.name_any("upper", "upper_folded", "sorting_upper") if r.has("name") else t["occupier"])
    lines.append(r.address(r.rng.choice(["upper_lines", "upper_lines", "no_country_lines"])))
    if r.has("phone"):
        lines.append(f"TEL: {r.phone('national', 'international', 'e164', 'compact')}")
    if r.has("email"):
        lines.append(f"{t['notify'].upper()}: {r.email(r.rng.choice(['plain', 'upper']))}")
    lines.append("")
    day = r.date("iso")[:10]
    hour, minute = r.rng.randint(7, 11), r.rng.randint(0, 59)
    driver = t["driver_line"].format(name=r.driver(), x=r.courier_phone())
    lines.append(f"{day} {hour:02d}:{minute:02d}  {t['out_for_delivery']} - {driver}")
    later = f"{day} {hour + r.rng.randint(1, 6):02d}:{r.rng.randint(0, 59):02d}"
    roll = r.rng.random()
    if roll < 0.4:
        name, address = r.neighbour()
        lines.append(f"{later}  {t['neighbour'].format(name=name, address=address)}")
    elif roll < 0.7 and r.has("name"):
        lines.append(f"{later}  {t['delivered']} {r.name_any('initial', 'upper', 'natural')}")
    else:
        lines.append(f"{later}  {t['attempted']}")
    return lines


def _invoice(r: _Record) -> list[str]:
    t = r.t
    lines = [r.company.name, r.company_address()]
    lines.append(
        f"{t['invoice']} INV-{r.rng.randint(2021, 2024)}-{r.rng.randint(1000, 99999):05d}  {t['date']}: {r.date()}"
    )
    lines.append("")
    lines.append(f"{t['bill_to']}:")
    if r.has("name"):
        lines.append(r.name_any("natural", "request", "family_upper" if r.c.code == "FR" else "natural"))
    if r.has("address"):
        lines.append(r.address(r.rng.choice(["lines", "no_country_lines", "line"])))
    if r.has("email"):
        lines.append(r.email("plain"))
    if r.has("phone"):
        lines.append(
            f"{t['phone']}: {r.phone('national', 'international', 'area_brackets', 'slashes', 'dashes')}"
        )
    if r.rng.random() < 0.2:
        other = r.other()
        lines += ["", f"{t['ship_to']}:", r.other_mark(other, "name"), r.other_mark(other, "address")]
    lines.append("")
    price = r.rng.randint(900, 25000) / 100
    lines.append(
        f"1 x {r.rng.choice(['Wool coat', 'Running shoes', 'Desk lamp', 'Gift card', 'Rain jacket'])}  {price:.2f}"
    )
    lines.append(f"{t['total']}: {price:.2f}")
    lines.append(f"{t['payment_queries']}: {r.company_email('invoices')} · {r.company_phone()}")
    return lines


def _email_message(r: _Record) -> list[str]:
    t = r.t
    if r.has("name"):
        display = r.name_any("natural", "sorting", "request")
        sender = f'"{display}" <{r.email("typed")}>' if "," in display else f"{display} <{r.email('typed')}>"
    else:
        sender = r.email("typed")
    lines = [f"{t['from']}: {sender}", f"{t['to']}: {r.company.name} <{r.company_email()}>"]
    referral = None
    if r.rng.random() < 0.3:
        other = r.other()
        if r.rng.random() < 0.5:
            lines.append(f"Cc: {r.other_mark(other, 'name')} <{r.other_mark(other, 'email')}>")
        else:
            referral = t["referral"].format(name=r.other_mark(other, "name"), x=r.other_mark(other, "email"))
    topic = r.topic()
    lines.append(f"{t['date']}: {r.date()}")
    lines.append(f"{t['subject']}: {t['subjects'][topic]}")
    lines.append("")
    lines.append(t["bodies"][topic])
    if referral:
        lines.append(referral)
    lines.append("")
    lines.append(f"{r.rng.choice(t['regards'])},")
    if r.has("name"):
        lines.append(r.name_any("natural", "nickname", "natural"))
    if r.has("phone"):
        label = r.rng.choice([t["mobile"], t["phone"], "M", "Mob"])
        lines.append(
            f"{label}: {r.phone('international', 'national', 'trunk_brackets', 'area_brackets', 'request')}"
        )
    if r.has("address"):
        lines.append(r.address(r.rng.choice(["line", "no_country", "abbreviated", "lines"])))
    if r.rng.random() < 0.4:
        agent = r.agent()
        reply = t["replies"][_REPLY_TO_TOPIC[topic]]
        lines += ["", f"> {t['reply_from']} {r.agent_name(agent)} <{r.agent_email(agent)}>", f"> {reply}"]
    return lines


def _call_note(r: _Record) -> list[str]:
    t = r.t
    agent = r.agent()
    lines = [
        r.date("iso")
        + " · "
        + (
            t["call_in"].format(x=r.phone("e164", "international", "national", "compact"))
            if r.has("phone")
            else t["call_withheld"]
        )
    ]
    if r.has("name"):
        lines.append(t["caller"].format(x=r.name_any("natural", "request", "nickname")))
    lines.append(t["call_about"].format(order=r.order_no()))
    if r.has("phone") and r.rng.random() < 0.5:
        lines.append(t["call_back"].format(x=r.phone("national", "compact", "area_brackets", "slashes")))
    if r.has("email"):
        lines.append(t["call_email"].format(x=r.email("plain")))
    if r.has("address"):
        lines.append(
            t["call_address"].format(x=r.address(r.rng.choice(["line", "abbreviated", "no_country"])))
        )
    if r.rng.random() < 0.15:
        name, address = r.neighbour()
        lines.append(t["leave_with"].format(name=name, address=address))
    lines.append(f"- {r.agent_name(agent)}")
    return lines


#: The agent's reply to each topic (parcel, refund, wrong item, address, cancellation).
_REPLY_TO_TOPIC = (0, 1, 1, 2, 2)

#: Record type -> (writer, kinds it needs among the record's kinds).
RECORD_TYPES = {
    "support_ticket": (_support_ticket, set()),
    "crm_note": (_crm_note, set()),
    "order_confirmation": (_order_confirmation, set()),
    "chat_transcript": (_chat, set()),
    "shipping_log": (_shipping_log, {"address"}),
    "invoice": (_invoice, set()),
    "email_message": (_email_message, {"email"}),
    "call_note": (_call_note, set()),
}


# The plan --------------------------------------------------------------------------------------


@dataclass
class _Plan:
    kinds: set[str]
    anchor: str
    language: str = "en"
    record_type: str = field(default="")


def _requested(person: ProbePerson) -> list[str]:
    return [k for k in KINDS if person.request.get("addresses" if k == "address" else f"{k}s")]


def records_for(
    person: ProbePerson, country: CountryProfile, rng: random.Random, *, taken: frozenset[str] = frozenset()
) -> list[TrainingRecord]:
    """3-8 records of the person's, each with at least one requested identifier, labelled.

    ``taken``: phone numbers (national significant digits) and e-mails of other people in the
    corpus, which the records' other customers and couriers must not reuse.
    """
    company = COMPANIES[country.code]
    requested = _requested(person)
    shown = {k for k in KINDS if rng.random() < SHOWN_SHARE[k]}
    anchors = [k for k in requested if k in shown]
    if not anchors:
        anchors = [rng.choice(requested)]
        shown.add(anchors[0])
    count = rng.randint(3, 8)
    plans = []
    for _ in range(count):
        anchor = rng.choice(anchors)
        kinds = {anchor} | {k for k in KINDS if k in shown and rng.random() < PER_RECORD_SHARE}
        plans.append(_Plan(kinds, anchor))
    for kind in sorted(shown):
        if not any(kind in plan.kinds for plan in plans):
            rng.choice(plans).kinds.add(kind)
    local = _LANGUAGE[country.code]
    for plan in plans:
        plan.language = local if local != "en" and rng.random() < LOCAL_LANGUAGE_SHARE else "en"
        fitting = [name for name, (_, needs) in RECORD_TYPES.items() if needs <= plan.kinds]
        plan.record_type = rng.choice(fitting)
    names = _Names(person, country, rng, taken)
    out = []
    for index, plan in enumerate(plans, start=1):
        writer, _ = RECORD_TYPES[plan.record_type]
        record = _Record(
            person, country, company, rng, names, kinds=plan.kinds, anchor=plan.anchor, language=plan.language
        )
        text = "\n".join(writer(record))
        _check(record, text, person, plan)
        out.append(
            TrainingRecord(
                record_id=f"{person.person_id}-R{index}",
                text=text,
                mentions=record.mentions,
                record_type=plan.record_type,
                language=plan.language,
            )
        )
    return out


def _check(record: _Record, text: str, person: ProbePerson, plan: _Plan) -> None:
    """The labels are true: every mention is in the text, every planned kind of the person is."""
    for mention in record.mentions:
        if mention.written not in text:
            raise AssertionError(f"{person.person_id}: {mention} not in {plan.record_type} record")
    own = {m.kind for m in record.mentions if m.owner == person.person_id}
    if not plan.kinds <= own or record.anchor_pending:
        raise AssertionError(f"{person.person_id}: {plan.record_type} lacks {plan.kinds - own}")


def records_seed(corpus_seed: int, person_id: str) -> str:
    """The seed of one person's records: independent of the stream that draws the corpus."""
    return f"guard-probe-records:{corpus_seed}:{person_id}"
