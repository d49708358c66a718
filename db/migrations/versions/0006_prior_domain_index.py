"""a covering index for the per-domain counts of prior sets

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 12:50:00
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('priormaterial', schema=None) as batch_op:
        batch_op.create_index('ix_priormaterial_set_domain_identifier', ['prior_set_id', 'element_domain', 'identifier'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('priormaterial', schema=None) as batch_op:
        batch_op.drop_index('ix_priormaterial_set_domain_identifier')
