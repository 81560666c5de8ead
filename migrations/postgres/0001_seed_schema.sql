-- The RecallIQ web app's schema (spec/database-schema.md), created only where it is missing.
-- Against a database made by the web app every statement here is a no-op.
CREATE TABLE IF NOT EXISTS tenants_tenant (
    id SERIAL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    domain VARCHAR(100) UNIQUE NOT NULL,
    is_active BOOLEAN DEFAULT TRUE,
    plan VARCHAR(50) DEFAULT 'basic',
    status VARCHAR(20) DEFAULT 'active',
    contact_person VARCHAR(200),
    contact_email VARCHAR(254),
    billing_email VARCHAR(254),
    company_address TEXT,
    phone_number VARCHAR(20),
    monthly_email_limit INTEGER DEFAULT 1000,
    emails_sent_this_month INTEGER DEFAULT 0,
    settings JSONB,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_tenant_domain ON tenants_tenant(domain);
CREATE INDEX IF NOT EXISTS idx_tenant_status ON tenants_tenant(status);
CREATE INDEX IF NOT EXISTS idx_tenant_plan ON tenants_tenant(plan);

CREATE TABLE IF NOT EXISTS core_user (
    id SERIAL PRIMARY KEY,
    username VARCHAR(150) UNIQUE NOT NULL,
    email VARCHAR(254) UNIQUE NOT NULL,
    password VARCHAR(128) NOT NULL,
    first_name VARCHAR(150),
    last_name VARCHAR(150),
    role VARCHAR(20) NOT NULL DEFAULT 'user',
    tenant_id INTEGER REFERENCES tenants_tenant(id),
    is_active BOOLEAN DEFAULT TRUE,
    is_staff BOOLEAN DEFAULT FALSE,
    is_superuser BOOLEAN DEFAULT FALSE,
    date_joined TIMESTAMP DEFAULT NOW(),
    last_login TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_user_tenant ON core_user(tenant_id);
CREATE INDEX IF NOT EXISTS idx_user_role ON core_user(role);
CREATE INDEX IF NOT EXISTS idx_user_email ON core_user(email);

CREATE TABLE IF NOT EXISTS emails_emailtemplate (
    id SERIAL PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants_tenant(id),
    name VARCHAR(200) NOT NULL,
    subject VARCHAR(500) NOT NULL,
    body_html TEXT,
    body_text TEXT,
    is_active BOOLEAN DEFAULT TRUE,
    variables JSONB,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_template_tenant ON emails_emailtemplate(tenant_id);
CREATE INDEX IF NOT EXISTS idx_template_active ON emails_emailtemplate(is_active);

CREATE TABLE IF NOT EXISTS tenants_group (
    id SERIAL PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants_tenant(id),
    name VARCHAR(200) NOT NULL,
    description TEXT,
    is_active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_group_tenant ON tenants_group(tenant_id);
CREATE INDEX IF NOT EXISTS idx_group_active ON tenants_group(is_active);

CREATE TABLE IF NOT EXISTS tenants_groupemail (
    id SERIAL PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES tenants_group(id),
    email VARCHAR(254) NOT NULL,
    name VARCHAR(200),
    is_active BOOLEAN DEFAULT TRUE,
    variables JSONB,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_groupemail_group ON tenants_groupemail(group_id);
CREATE INDEX IF NOT EXISTS idx_groupemail_email ON tenants_groupemail(email);
CREATE INDEX IF NOT EXISTS idx_groupemail_active ON tenants_groupemail(is_active);

CREATE TABLE IF NOT EXISTS batches_batch (
    id SERIAL PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants_tenant(id),
    template_id INTEGER NOT NULL REFERENCES emails_emailtemplate(id),
    name VARCHAR(200) NOT NULL,
    status VARCHAR(20) DEFAULT 'draft',
    scheduled_at TIMESTAMP,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    sent_count INTEGER DEFAULT 0,
    failed_count INTEGER DEFAULT 0,
    variables JSONB,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_batch_tenant ON batches_batch(tenant_id);
CREATE INDEX IF NOT EXISTS idx_batch_template ON batches_batch(template_id);
CREATE INDEX IF NOT EXISTS idx_batch_status ON batches_batch(status);
CREATE INDEX IF NOT EXISTS idx_batch_scheduled ON batches_batch(scheduled_at);

CREATE TABLE IF NOT EXISTS batches_batchgroup (
    id SERIAL PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches_batch(id),
    group_id INTEGER NOT NULL REFERENCES tenants_group(id),
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_batchgroup_batch ON batches_batchgroup(batch_id);
CREATE INDEX IF NOT EXISTS idx_batchgroup_group ON batches_batchgroup(group_id);

CREATE TABLE IF NOT EXISTS logs_emaillog (
    id SERIAL PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches_batch(id),
    recipient_email VARCHAR(254) NOT NULL,
    recipient_name VARCHAR(200),
    status VARCHAR(20) NOT NULL,
    sent_at TIMESTAMP,
    error_message TEXT,
    smtp_response TEXT,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_emaillog_batch ON logs_emaillog(batch_id);
CREATE INDEX IF NOT EXISTS idx_emaillog_recipient ON logs_emaillog(recipient_email);
CREATE INDEX IF NOT EXISTS idx_emaillog_status ON logs_emaillog(status);
CREATE INDEX IF NOT EXISTS idx_emaillog_sent_at ON logs_emaillog(sent_at);

CREATE TABLE IF NOT EXISTS logs_batchexecutionlog (
    id SERIAL PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches_batch(id),
    action VARCHAR(50) NOT NULL,
    message TEXT,
    details JSONB,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_batchlog_batch ON logs_batchexecutionlog(batch_id);
CREATE INDEX IF NOT EXISTS idx_batchlog_action ON logs_batchexecutionlog(action);
CREATE INDEX IF NOT EXISTS idx_batchlog_created ON logs_batchexecutionlog(created_at);

-- The spec's named unique constraints; ADD CONSTRAINT has no IF NOT EXISTS.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'unique_group_email') THEN
        ALTER TABLE tenants_groupemail ADD CONSTRAINT unique_group_email UNIQUE (group_id, email);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'unique_batch_group') THEN
        ALTER TABLE batches_batchgroup ADD CONSTRAINT unique_batch_group UNIQUE (batch_id, group_id);
    END IF;
END
$$;

-- "Useful Indexes" of the spec.
CREATE INDEX IF NOT EXISTS idx_emaillog_batch_status ON logs_emaillog(batch_id, status);
CREATE INDEX IF NOT EXISTS idx_emaillog_tenant_date ON logs_emaillog(batch_id, sent_at)
    WHERE sent_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_user_active_tenant ON core_user(tenant_id)
    WHERE is_active = TRUE;
CREATE INDEX IF NOT EXISTS idx_group_active_tenant ON tenants_group(tenant_id)
    WHERE is_active = TRUE;

-- TenantEmails of the ERD: verified sender addresses of a tenant.
CREATE TABLE IF NOT EXISTS tenants_tenantemail (
    id SERIAL PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants_tenant(id),
    email VARCHAR(254) NOT NULL,
    name VARCHAR(200),
    is_active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_tenantemail_tenant ON tenants_tenantemail(tenant_id);
CREATE UNIQUE INDEX IF NOT EXISTS unique_tenant_email ON tenants_tenantemail(tenant_id, email);
