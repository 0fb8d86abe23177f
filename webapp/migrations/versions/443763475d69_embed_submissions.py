"""embed submissions: the partner and skier hint of an analysis, results links, rate limits

Revision ID: 443763475d69
Revises: cbe7c369594c
Create Date: 2026-11-27 11:36:45.025241

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '443763475d69'
down_revision = 'cbe7c369594c'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('analyses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skier_hint', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('partner_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('notified_status', sa.String(length=32), nullable=True))
        batch_op.alter_column('status', existing_type=sa.String(length=20), type_=sa.String(length=32), existing_nullable=False)
        batch_op.create_index(batch_op.f('ix_analyses_partner_id'), ['partner_id'], unique=False)
        batch_op.create_foreign_key('fk_analyses_partner_id_partners', 'partners', ['partner_id'], ['id'], ondelete='SET NULL')

    # No release created embed tokens before this revision, so the table is empty and the
    # new columns can be required.
    with op.batch_alter_table('embed_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('results_token_hash', sa.String(length=64), nullable=False))
        batch_op.add_column(sa.Column('client_ip', sa.String(length=64), nullable=False))
        batch_op.create_index(batch_op.f('ix_embed_tokens_client_ip'), ['client_ip'], unique=False)
        batch_op.create_index(batch_op.f('ix_embed_tokens_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_embed_tokens_email'), ['email'], unique=False)
        batch_op.create_unique_constraint('uq_embed_tokens_results_token_hash', ['results_token_hash'])


def downgrade():
    with op.batch_alter_table('embed_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('uq_embed_tokens_results_token_hash', type_='unique')
        batch_op.drop_index(batch_op.f('ix_embed_tokens_email'))
        batch_op.drop_index(batch_op.f('ix_embed_tokens_created_at'))
        batch_op.drop_index(batch_op.f('ix_embed_tokens_client_ip'))
        batch_op.drop_column('client_ip')
        batch_op.drop_column('results_token_hash')

    with op.batch_alter_table('analyses', schema=None) as batch_op:
        batch_op.drop_constraint('fk_analyses_partner_id_partners', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_analyses_partner_id'))
        batch_op.drop_column('notified_status')
        batch_op.drop_column('partner_id')
        batch_op.drop_column('skier_hint')
        batch_op.alter_column('status', existing_type=sa.String(length=32), type_=sa.String(length=20), existing_nullable=False)
