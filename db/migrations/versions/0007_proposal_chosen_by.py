"""what chose each proposed place: the acquisition function or the highest predicted mean (an exploitation place)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 02:00:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0007'
down_revision: Union[str, None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # proposals made before this column existed were all chosen by the acquisition function
    with op.batch_alter_table('proposalitem', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chosen_by', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default='acquisition'))


def downgrade() -> None:
    with op.batch_alter_table('proposalitem', schema=None) as batch_op:
        batch_op.drop_column('chosen_by')
