"""the relay's due query: an index on (status, next_attempt_at)

Every worker's relay asks, each interval, for unfinished rows that are due; with the
index it reads only unfinished rows (queued, sending, retrying) and, for retrying ones,
only those whose time has come, however many finished rows retention still keeps.

Revision ID: 0005_relay
Revises: 0004_relay_sweep
Create Date: 2026-12-01 21:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0005_relay'
down_revision = '0004_relay_sweep'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_email_delivery_status_next_attempt_at', 'email_delivery',
                    ['status', 'next_attempt_at'], unique=False)


def downgrade():
    op.drop_index('ix_email_delivery_status_next_attempt_at', table_name='email_delivery')
