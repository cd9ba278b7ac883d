"""Regenerate the Kestrel Labs company database (examples/kestrel/database/kestrel.sqlite).

A small HR and CRM database, consistent with the rest of the example archive: the people of the
Lisbon office with their salaries (as in hr/salaries-2026.csv), customers, and Falcon 2 deals (as
in sales/pipeline-q3-2026.xlsx). What memex reads from it, and how, is declared beside it in
kestrel.database.yaml; policies/company.yaml labels it.

Run from the repository root: python examples/generate_kestrel_database.py
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

TARGET = Path(__file__).parent / "kestrel" / "database" / "kestrel.sqlite"

SCHEMA = """
CREATE TABLE departments (
    department_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    office TEXT NOT NULL
);
CREATE TABLE employees (
    employee_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    job_title TEXT NOT NULL,
    department_id INTEGER NOT NULL REFERENCES departments(department_id),
    manager_id INTEGER REFERENCES employees(employee_id),
    start_date TEXT NOT NULL,
    salary_eur INTEGER NOT NULL,
    bonus_target_pct INTEGER NOT NULL,
    birth_date TEXT NOT NULL,
    home_address TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('customer', 'prospect')),
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    sector TEXT NOT NULL,
    account_owner_id INTEGER REFERENCES employees(employee_id),
    sensors_installed INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE TABLE deals (
    deal_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    owner_id INTEGER NOT NULL REFERENCES employees(employee_id),
    product TEXT NOT NULL,
    units INTEGER NOT NULL,
    value_eur INTEGER NOT NULL,
    stage TEXT NOT NULL,
    expected_close TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

DEPARTMENTS = [
    (1, "Leadership", "Lisbon"),
    (2, "Engineering", "Lisbon"),
    (3, "People", "Lisbon"),
    (4, "Finance", "Lisbon"),
    (5, "Sales", "Lisbon"),
    (6, "Operations", "Lisbon"),
]

# Salaries and bonus targets as in hr/salaries-2026.csv. Birth dates and home addresses are
# fictional, like everything else here.
EMPLOYEES = [
    (
        1,
        "Erin",
        "Duarte",
        "erin@kestrel.example",
        "CEO",
        1,
        None,
        "2019-03-01",
        148000,
        20,
        "1979-05-14",
        "Rua de São Bento 112, 1200-820 Lisbon",
    ),
    (
        2,
        "Alice",
        "Moreau",
        "alice@kestrel.example",
        "CTO",
        2,
        1,
        "2019-03-01",
        131500,
        15,
        "1984-11-02",
        "Rua da Escola Politécnica 45, 1250-099 Lisbon",
    ),
    (
        3,
        "Dev",
        "Okafor",
        "dev@kestrel.example",
        "Senior Engineer",
        2,
        2,
        "2021-09-13",
        87250,
        10,
        "1991-02-27",
        "Avenida Almirante Reis 201, 1000-049 Lisbon",
    ),
    (
        4,
        "Hana",
        "Ito",
        "hana@kestrel.example",
        "People Lead",
        3,
        1,
        "2022-01-10",
        74800,
        8,
        "1988-07-19",
        "Rua Ferreira Borges 9, 1350-130 Lisbon",
    ),
    (
        5,
        "Frank",
        "Costa",
        "frank@kestrel.example",
        "Finance Lead",
        4,
        1,
        "2020-06-01",
        92300,
        10,
        "1976-12-05",
        "Rua Actor Taborda 30, 1000-008 Lisbon",
    ),
    (
        6,
        "Sam",
        "Rivera",
        "sam@kestrel.example",
        "Account Executive",
        5,
        1,
        "2023-04-17",
        61900,
        25,
        "1993-03-30",
        "Travessa do Carmo 4, 1200-095 Lisbon",
    ),
    (
        7,
        "Pat",
        "Silva",
        "pat@kestrel.example",
        "Office Manager",
        6,
        1,
        "2020-02-03",
        43700,
        5,
        "1985-09-08",
        "Rua dos Lagares 17, 1100-335 Lisbon",
    ),
]

CUSTOMERS = [
    (
        1,
        "SPEA - Sociedade Portuguesa para o Estudo das Aves",
        "customer",
        "Lisbon",
        "Portugal",
        "bird conservation",
        6,
        60,
    ),
    (2, "Universidade de Coimbra", "customer", "Coimbra", "Portugal", "university", 6, 30),
    (3, "RSPB Scotland", "customer", "Edinburgh", "United Kingdom", "bird conservation", 6, 0),
    (4, "Natuurpunt", "customer", "Mechelen", "Belgium", "nature reserves", 1, 25),
    (5, "Museu Natural de Lisboa", "prospect", "Lisbon", "Portugal", "museum", 6, 0),
]

# List price EUR 1,290 a sensor, 8% off from 25 units (sales/pricing-2026.pptx).
DEALS = [
    (1, 1, 6, "Falcon 2 sensor", 60, 71208, "Won", "2025-11-20"),
    (2, 2, 6, "Falcon 2 sensor", 30, 33825, "Won", "2026-02-16"),  # 8% + 5% for universities
    (3, 4, 1, "Falcon 2 sensor", 25, 29670, "Won", "2026-04-30"),
    (4, 3, 6, "Falcon 2 sensor", 75, 89010, "Won", "2026-08-02"),
    (5, 5, 6, "Falcon 2 sensor", 40, 47472, "Proposal", "2026-10-15"),
]

UPDATED = "2026-09-01T09:00:00"


def build(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    db = sqlite3.connect(partial)
    with db:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO departments VALUES (?, ?, ?)", DEPARTMENTS)
        db.executemany(
            "INSERT INTO employees VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, UPDATED) for row in EMPLOYEES],
        )
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [(*row, UPDATED) for row in CUSTOMERS]
        )
        db.executemany(
            "INSERT INTO deals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [(*row, UPDATED) for row in DEALS]
        )
    db.execute("VACUUM")
    db.close()
    partial.replace(path)


if __name__ == "__main__":
    build(TARGET)
    print(f"wrote {TARGET}")
