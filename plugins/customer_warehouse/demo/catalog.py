"""The business facts of «Зерно и Пар»: jobs, products, prices, managers, cities, rates.

Everything the simulation draws from lives here as plain data, so the demo company can be read
(and changed) without reading the simulation. The job table mirrors docs/demo-company.md; the
activity rates are the "true" cost-to-serve rates the truth files are computed with (the dbt
seeds should carry the same numbers, see the docs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMPANY = "Зерно и Пар"
SITE = "https://zernoipar.ru"
TIMEZONE = "Europe/Moscow"
UTC_OFFSET_HOURS = 3  # Moscow has no DST since 2014, so a fixed offset is exact
CURRENCY = "RUB"

AMOCRM_ACCOUNT = "zernoipar"
AMOCRM_ACCOUNT_ID = 29_517_300
BITRIX24_PORTAL = "zernoipar-opt.bitrix24.ru"
COUNTER_ID = 91_234_567
COUNTER_NAME = "zernoipar.ru"

#: cost-to-serve rates, RUB per activity (activity-based costing). The same numbers as the dbt seed
#: ``activity_rates.csv``, so a pipeline that counts activities right reproduces the true cost.
ACTIVITY_RATES: dict[str, float] = {
    "call": 150.0,
    "meeting": 1500.0,
    "email": 60.0,
    "delivery": 350.0,
    "complaint": 800.0,
    "store_visit": 200.0,
}


@dataclass(frozen=True)
class Product:
    name: str
    price: float  # RUB per unit
    margin: float  # share of price that is gross margin


@dataclass(frozen=True)
class Job:
    """One job to be done with everything that makes it visible in the sources."""

    job_id: str
    title: str
    products: tuple[Product, ...]
    phrases: tuple[str, ...]
    landing: str
    utm_term: str
    campaign: str
    survey_answer: str
    purpose_notes: tuple[str, ...]  # how a manager writes the purpose in the CRM
    weight: float  # share of customers
    b2b_share: float
    crm: str  # "amocrm" or "bitrix24" (where its deals live)
    gap_days: tuple[float, float]  # mean inter-purchase gap range (customer-level)
    gap_shape: float  # gamma shape of gaps around the mean (higher = more regular)
    quantity: tuple[int, int]  # units per line (B2C); B2B multiplies
    drop_beta: tuple[float, float]  # Beta(a, b) of the dropout probability after a purchase
    calls_per_order: float
    meetings_per_order: float
    emails_per_order: float
    deliveries: bool = True
    extra_sources: tuple[str, ...] = field(default=("yandex",))


JOBS: tuple[Job, ...] = (
    Job(
        "home_espresso", "Make café-quality espresso at home, as a hobby",
        (Product("Зерно спешелти 250 г", 890.0, 0.45), Product("Ручная кофемолка", 6490.0, 0.35),
         Product("Гейзерная кофеварка", 3290.0, 0.30)),
        ("как приготовить эспрессо дома", "кофемолка для дома", "ручная кофемолка купить",
         "спешелти зерно купить"),
        "/hobby", "espresso_home", "hobby_search", "Варю кофе дома, это моё хобби",
        ("для себя, варит дома эспрессо", "хобби, домашний эспрессо", "увлекается, варит дома"),
        0.22, 0.0, "amocrm", (42.0, 56.0), 3.0, (1, 3), (1.0, 9.0), 0.8, 0.0, 0.0,
    ),
    Job(
        "office_supply", "Keep an office's staff in coffee without effort",
        (Product("Кофе для офиса 1 кг", 1290.0, 0.30), Product("Аренда кофемашины", 4500.0, 0.40),
         Product("Чистящие таблетки", 990.0, 0.50)),
        ("кофе в офис с доставкой", "кофе для офиса", "аренда кофемашины в офис",
         "поставка кофе в офис"),
        "/office", "office_coffee", "office_search", "Для сотрудников в офисе",
        ("для офиса, сотрудники", "кофе в офис", "офис, регулярные поставки"),
        0.16, 0.85, "amocrm", (14.0, 28.0), 4.0, (2, 6), (1.0, 14.0), 0.9, 0.08, 0.0,
    ),
    Job(
        "horeca_restock", "Keep a café's bar stocked at steady quality",
        (Product("Зерно HoReCa 5 кг", 7900.0, 0.22), Product("Молоко для бариста (ящик)", 2350.0, 0.15),
         Product("Стаканы 300 мл (1000 шт)", 3100.0, 0.25)),
        ("кофе оптом для кофейни", "зерно для кофейни", "поставщик кофе для кофейни",
         "кофе оптом москва"),
        "/horeca", "horeca_wholesale", "horeca_search", "Для нашей кофейни",
        ("кофейня, пополнение бара", "для кофейни, опт", "HoReCa, постоянные поставки"),
        0.12, 1.0, "bitrix24", (6.0, 10.0), 5.0, (1, 4), (1.0, 25.0), 1.5, 0.12, 0.3,
    ),
    Job(
        "gift", "Give a coffee lover a memorable present",
        (Product("Подарочный набор", 2990.0, 0.50), Product("Подарочный сертификат", 3000.0, 0.70),
         Product("Кружка с гравировкой", 1490.0, 0.55)),
        ("подарок кофеману", "подарочный набор кофе", "что подарить любителю кофе",
         "подарочный сертификат кофе"),
        "/gifts", "coffee_gift", "gifts_search", "В подарок",
        ("в подарок", "подарок коллеге", "подарок на праздник"),
        0.18, 0.0, "amocrm", (180.0, 365.0), 2.0, (1, 2), (2.0, 6.0), 0.9, 0.0, 0.0,
        extra_sources=("yandex", "vk"),
    ),
    Job(
        "daily_energy", "Get through the working day awake, cheaply and fast",
        (Product("Капсулы (50 шт)", 1590.0, 0.35), Product("Дрип-пакеты (10 шт)", 690.0, 0.40),
         Product("Растворимый кофе", 450.0, 0.30)),
        ("капсулы купить", "дрип пакеты кофе", "капсулы для кофемашины недорого",
         "кофе в капсулах"),
        "/capsules", "capsules", "capsules_search", "Чтобы взбодриться утром",
        ("чтобы взбодриться", "капсулы, пьёт каждый день", "кофе на каждый день"),
        0.22, 0.0, "amocrm", (25.0, 38.0), 2.5, (1, 4), (1.0, 7.0), 0.6, 0.0, 0.0,
        extra_sources=("yandex", "vk"),
    ),
    Job(
        "barista_growth", "Grow as a barista / open one's own coffee point",
        (Product("Курс бариста", 18900.0, 0.60), Product("Питчер 600 мл", 1290.0, 0.35),
         Product("Темпер 58 мм", 2490.0, 0.35)),
        ("курсы бариста", "обучение бариста", "как стать бариста", "темпер 58 мм купить"),
        "/academy", "barista_school", "academy_search", "Хочу стать бариста",
        ("учится на бариста", "курс бариста, хочет открыть точку", "развивается как бариста"),
        0.10, 0.2, "amocrm", (80.0, 110.0), 0.7, (1, 2), (1.0, 6.0), 0.9, 0.3, 0.0,
    ),
)
JOB_BY_ID = {job.job_id: job for job in JOBS}


@dataclass(frozen=True)
class ServiceProfile:
    """How a customer is served, on top of their job's usual pattern (what makes some lose money).

    Cost to serve follows the activity rates above, so a profile only changes *how many* activities
    (calls, meetings, e-mails, complaints, deliveries) a customer causes, how large and frequent
    the orders are, the discount, and how the customer was acquired.
    """

    name: str
    extra_calls: float = 0.0  # per won order, on top of the job's
    extra_meetings: float = 0.0
    extra_emails: float = 0.0
    complaint_p: float | None = None  # per won order; None = by satisfaction
    complaint_churn: float = 0.35  # chance a complaint ends the relationship
    small_orders: bool = False  # one line, one unit, no B2B volume multiplier
    gap_factor: float = 1.0  # × the customer's mean inter-purchase gap (not below MIN_PROFILE_GAP_DAYS)
    loyalty: float = 1.0  # × the dropout chance per order (after scaling it to the new gap)
    drop_range: tuple[float, float] | None = None  # overrides the job's dropout Beta
    discount: tuple[float, float] | None = None  # a deep discount on every order (cost of goods stays)
    ad_acquired: bool = False  # came through a paid campaign (and only shops online)


#: a non-standard profile's gaps are never shorter than this (a customer has ids.PER_CUSTOMER ids for all their records)
MIN_PROFILE_GAP_DAYS = 10.0
STANDARD = ServiceProfile("standard")
SERVICE_PROFILES: dict[str, ServiceProfile] = {p.name: p for p in (
    STANDARD,
    # B2B accounts that order one unit at a time, every week or two, and stay for years: a delivery,
    # calls and e-mails for every small order, and a manager's visit to most of them.
    ServiceProfile("small_frequent", extra_calls=3.0, extra_meetings=1.3, extra_emails=1.0, small_orders=True,
                   gap_factor=0.5, loyalty=0.25),
    # Demanding customers: tastings and meetings, calls, and complaints they do not leave over.
    ServiceProfile("demanding", extra_calls=1.5, extra_meetings=1.2, complaint_p=0.30, complaint_churn=0.08),
    # Deal hunters: brought by a paid campaign's promo, buy at a deep discount, rarely come back.
    ServiceProfile("deal_hunter", extra_calls=0.5, discount=(0.25, 0.40), drop_range=(0.70, 0.95), ad_acquired=True),
)}
#: share of each profile among a job's customers: (job_id, is_b2b) -> ((profile, share), ...);
#: the rest are "standard". Deal hunters need an online shop (amoCRM), others fall back to standard.
PROFILE_SHARES: dict[tuple[str, bool], tuple[tuple[str, float], ...]] = {
    ("office_supply", True): (("small_frequent", 0.50), ("demanding", 0.10)),
    ("office_supply", False): (("demanding", 0.10),),
    ("horeca_restock", True): (("small_frequent", 0.50), ("demanding", 0.10)),
    ("barista_growth", True): (("demanding", 0.12),),
    ("barista_growth", False): (("demanding", 0.12), ("deal_hunter", 0.05)),
    ("home_espresso", False): (("demanding", 0.10), ("deal_hunter", 0.10)),
    ("daily_energy", False): (("demanding", 0.08), ("deal_hunter", 0.20)),
    ("gift", False): (("demanding", 0.05), ("deal_hunter", 0.20)),
}

#: Legacy offline store: a share of amoCRM B2C customers also bought in the showroom before,
#: and some customers exist only in the store's Excel export.
FILE_ONLY_SHARE = 0.10
#: Leads that never convert (a quote, a call, then nothing): the acquisition stage's losses.
PROSPECT_SHARE = 0.15
ALSO_FILE_SHARE = 0.18

CITIES: tuple[tuple[str, float], ...] = (
    ("Москва", 0.48), ("Санкт-Петербург", 0.14), ("Казань", 0.06), ("Екатеринбург", 0.06),
    ("Новосибирск", 0.05), ("Нижний Новгород", 0.05), ("Краснодар", 0.05), ("Подольск", 0.04),
    ("Химки", 0.04), ("Тверь", 0.03),
)

MALE_FIRST = ("Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья",
              "Кирилл", "Михаил", "Никита", "Роман", "Егор", "Павел", "Иван", "Олег")
FEMALE_FIRST = ("Анна", "Мария", "Елена", "Ольга", "Наталья", "Екатерина", "Татьяна", "Ирина",
                "Юлия", "Светлана", "Дарья", "Ксения", "Алина", "Виктория", "Полина", "Софья")
LAST_STEMS = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
              "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
              "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин")
TRANSLIT = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sch",
    "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
})
EMAIL_DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "list.ru")
COMPANY_WORDS = ("Вектор", "Альянс", "Север", "Гранит", "Меридиан", "Орбита", "Континент", "Импульс",
                 "Квадрат", "Лидер", "Прогресс", "Эталон", "Сфера", "Акцент", "Горизонт", "Ресурс")
CAFE_WORDS = ("Зёрна", "Бодрость", "Утро", "Арабика", "Пенка", "Капля", "Дрип", "Турка", "Бариста",
              "Кофеин", "Ростер", "Сахар", "Корица", "Лате", "Френч-пресс", "Обжарка")

#: amoCRM users: (id, name, email, card completeness) — some managers fill contact cards
#: (birthday, e-mail) far less often than others, which the episodic mart should surface.
AMO_USERS: tuple[tuple[int, str, str, float], ...] = (
    (8_100_001, "Анна Смирнова", "a.smirnova@zernoipar.ru", 0.95),
    (8_100_002, "Дмитрий Козлов", "d.kozlov@zernoipar.ru", 0.80),
    (8_100_003, "Елена Васильева", "e.vasilyeva@zernoipar.ru", 0.55),
    (8_100_004, "Игорь Новиков", "i.novikov@zernoipar.ru", 0.25),
    (8_100_005, "Ольга Морозова", "o.morozova@zernoipar.ru", 0.85),
)
#: Bitrix24 users of the wholesale portal: (ID, NAME, LAST_NAME, card completeness)
B24_USERS: tuple[tuple[int, str, str, float], ...] = (
    (11, "Сергей", "Павлов", 0.9),
    (12, "Марина", "Лебедева", 0.6),
    (13, "Алексей", "Соколов", 0.35),
)
FILE_MANAGERS = ("Петрова Н. В.", "Сидоров А. П.", "Гусева Т. И.")

#: amoCRM pipelines: (id, name, is_main, statuses [(id, name, sort, type)])
PIPELINE_SALES = 7_310_001
PIPELINE_GROWTH = 7_310_002
SALES_STATUSES = ((61_000_001, "Новый лид"), (61_000_002, "Квалификация"),
                  (61_000_003, "КП отправлено"), (61_000_004, "Счёт"))
GROWTH_STATUSES = ((61_000_011, "Повторный заказ"), (61_000_012, "Согласование"),
                   (61_000_013, "Счёт"))
WON, LOST = 142, 143

#: loss reasons: (id, name, kind) — kind "price" is what precedes competitor_price churn
LOSS_REASONS: tuple[tuple[int, str, str], ...] = (
    (9_001, "Дорого, ушёл к конкуренту", "price"),
    (9_002, "Не дозвонились", "other"),
    (9_003, "Нет в наличии", "other"),
    (9_004, "Передумал", "other"),
    (9_005, "Дубль", "other"),
)
PRICE_LOSS_ID = 9_001

#: Bitrix24 deal stages (crm.status.list, ENTITY_ID=DEAL_STAGE): (STATUS_ID, NAME, SORT, SEMANTICS)
B24_STAGES: tuple[tuple[str, str, int, str | None], ...] = (
    ("NEW", "Новая", 10, None), ("PREPARATION", "Подготовка документов", 20, None),
    ("PREPAYMENT_INVOICE", "Счёт на предоплату", 30, None), ("EXECUTING", "В работе", 40, None),
    ("FINAL_INVOICE", "Финальный счёт", 50, None), ("WON", "Сделка успешна", 60, "S"),
    ("LOSE", "Сделка провалена", 70, "F"), ("APOLOGY", "Анализ причины провала", 80, "F"),
)
B24_LOSS_REASONS = {"price": "Дорого, ушли к другому поставщику", "other": "Не договорились по срокам"}

COMPLAINTS = ("зерно пришло пережаренным", "доставка опоздала на два дня", "курьер нагрубил",
              "в заказе не хватало позиции", "кофемашина сломалась после обслуживания",
              "вкус стал хуже, чем раньше")
PREFERENCES = ("предпочитает светлую обжарку", "просит доставку после 18:00", "любит эфиопию",
               "без сахара и сиропов", "интересуется альтернативным завариванием")

CHURN_REASONS = ("need_disappeared", "dissatisfied", "competitor_price")
EXIT_ANSWERS = {
    "need_disappeared": "Больше не нужно (закрыли офис / сменили привычки)",
    "dissatisfied": "Не устроило качество или сервис",
    "competitor_price": "Нашли дешевле у другого поставщика",
    "alive": "Просто пауза, ещё вернусь",
}

HOLIDAYS = ((12, 28), (2, 20), (3, 5), (9, 25))  # New Year, 23 Feb, 8 Mar, a corporate autumn date

ANON_VISITORS_PER_CUSTOMER = 7.0
GOAL_ORDER_FORM, GOAL_CALLBACK, GOAL_CART = 3_101_001, 3_101_002, 3_101_003
