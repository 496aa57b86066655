"""the relay's sweep record: a short lease so N workers sweep as one, and its last sweep

Revision ID: 0004_relay_sweep
Revises: 0003_reset_security
Create Date: 2026-12-01 20:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004_relay_sweep'
down_revision = '0003_reset_security'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'relay_sweep',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('holder', sa.String(length=128), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_swept_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )
    # The one sweep there is: every worker's relay takes this row's lease.
    op.execute("INSERT INTO relay_sweep (name) VALUES ('outbox')")


def downgrade():
    op.drop_table('relay_sweep')
