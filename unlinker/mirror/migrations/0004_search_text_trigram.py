"""One trigram index per list over the text its search box reads (models.search_text): the
number, reference, matter and contact joined by spaces. With one index per column the OR of
five LIKEs was planned as a read of the whole table. PostgreSQL only, like 0002; the search's
SQL is `UPPER((a || ' ' || b ...)::text) LIKE UPPER(%s)`, which is what the index holds."""

from django.db import migrations

SEARCHED = {
    "mirror_linkedinvoice": [
        "invoice_number",
        "xero_invoice_number",
        "reference",
        "matter_name",
        "contact_name",
    ],
    "mirror_linkedpayment": ["reference", "invoice_number", "matter_name", "contact_name"],
}


def _name(table: str) -> str:
    return f"{table}_search_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, columns in SEARCHED.items():
        text = " || ' ' || ".join(f'"{column}"' for column in columns)
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{_name(table)}" ON "{table}" '
            f"USING gin ((UPPER(({text})::text)) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in SEARCHED:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{_name(table)}"')


class Migration(migrations.Migration):
    dependencies = [("mirror", "0003_linked_record_currency")]
    operations = [migrations.RunPython(create, drop)]
