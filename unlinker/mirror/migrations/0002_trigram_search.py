"""Trigram indexes for the lists' "contains" filters (matter, contact, number, reference) on
PostgreSQL: without them every such filter reads the whole table. Django's icontains compares
UPPER(column), so the indexes are on that expression. Other databases are left as they are."""

from django.db import migrations

SEARCHED = {
    "mirror_linkedinvoice": [
        "matter_name",
        "contact_name",
        "invoice_number",
        "reference",
        "xero_invoice_number",
    ],
    "mirror_linkedpayment": ["matter_name", "contact_name", "invoice_number", "reference"],
}


def _indexes():
    for table, columns in SEARCHED.items():
        for column in columns:
            yield f"{table}_{column}_trgm", table, column


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in _indexes():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in _indexes():
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("mirror", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
