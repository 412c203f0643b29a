-- The schema the old TradeStream strategy consumer's database was created with: its Flyway migrations V1 and V2
-- (public tradestreamhq/tradestream, database/migrations/V1__baseline_strategies_table.sql and
-- V2__add_strategy_specs.sql), as the adoption test recreates it.
CREATE TABLE IF NOT EXISTS Strategies (
    strategy_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    symbol VARCHAR NOT NULL,
    strategy_type VARCHAR NOT NULL,
    parameters JSONB NOT NULL,
    first_discovered_at TIMESTAMP NOT NULL DEFAULT NOW(),
    last_evaluated_at TIMESTAMP NOT NULL DEFAULT NOW(),
    current_score DOUBLE PRECISION NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    strategy_hash VARCHAR UNIQUE NOT NULL,
    discovery_symbol VARCHAR,
    discovery_start_time TIMESTAMP,
    discovery_end_time TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_strategies_symbol ON Strategies(symbol);
CREATE INDEX IF NOT EXISTS idx_strategies_strategy_type ON Strategies(strategy_type);
CREATE INDEX IF NOT EXISTS idx_strategies_current_score ON Strategies(current_score);
CREATE INDEX IF NOT EXISTS idx_strategies_is_active ON Strategies(is_active);
CREATE INDEX IF NOT EXISTS idx_strategies_discovery_symbol ON Strategies(discovery_symbol);
CREATE INDEX IF NOT EXISTS idx_strategies_created_at ON Strategies(created_at);

CREATE TABLE IF NOT EXISTS strategy_specs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) UNIQUE NOT NULL,
    version INTEGER DEFAULT 1,
    description TEXT,
    complexity VARCHAR(50),
    indicators JSONB NOT NULL,
    entry_conditions JSONB NOT NULL,
    exit_conditions JSONB NOT NULL,
    parameters JSONB NOT NULL,
    source VARCHAR(50) NOT NULL,
    source_citation TEXT,
    parent_spec_id UUID REFERENCES strategy_specs(id),
    tags TEXT[],
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_strategy_specs_name ON strategy_specs(name);
CREATE INDEX IF NOT EXISTS idx_strategy_specs_source ON strategy_specs(source);
CREATE INDEX IF NOT EXISTS idx_strategy_specs_is_active ON strategy_specs(is_active);
CREATE INDEX IF NOT EXISTS idx_strategy_specs_created_at ON strategy_specs(created_at);
CREATE INDEX IF NOT EXISTS idx_strategy_specs_tags ON strategy_specs USING GIN(tags);

CREATE TABLE IF NOT EXISTS strategy_implementations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    spec_id UUID NOT NULL REFERENCES strategy_specs(id) ON DELETE CASCADE,
    parameters JSONB NOT NULL,
    discovered_by VARCHAR(50) NOT NULL,
    generation INTEGER,
    backtest_metrics JSONB,
    paper_metrics JSONB,
    live_metrics JSONB,
    status VARCHAR(20) NOT NULL DEFAULT 'CANDIDATE',
    deployed_at TIMESTAMP,
    retired_at TIMESTAMP,
    notes TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_strategy_impl_spec_id ON strategy_implementations(spec_id);
CREATE INDEX IF NOT EXISTS idx_strategy_impl_discovered_by ON strategy_implementations(discovered_by);
CREATE INDEX IF NOT EXISTS idx_strategy_impl_status ON strategy_implementations(status);
CREATE INDEX IF NOT EXISTS idx_strategy_impl_created_at ON strategy_implementations(created_at);

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER update_strategy_specs_updated_at
    BEFORE UPDATE ON strategy_specs
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER update_strategy_implementations_updated_at
    BEFORE UPDATE ON strategy_implementations
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();
