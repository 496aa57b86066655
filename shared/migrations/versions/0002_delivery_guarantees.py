"""outbox relay columns and the attempt history of each delivery

Revision ID: 0002_delivery_guarantees
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0002_delivery_guarantees'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('relay_after', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('relays', sa.Integer(), server_default='0', nullable=False))

    op.create_table('email_delivery_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.String(length=32), nullable=False),
    sa.Column('worker', sa.String(length=128), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['email_delivery.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('email_delivery_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_delivery_attempt_delivery_id'), ['delivery_id'], unique=False)


def downgrade():
    with op.batch_alter_table('email_delivery_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_delivery_attempt_delivery_id'))

    op.drop_table('email_delivery_attempt')
    with op.batch_alter_table('email_delivery', schema=None) as batch_op:
        batch_op.drop_column('relays')
        batch_op.drop_column('relay_after')
