package main

import (
	"log/slog"
	"time"

	"github.com/tacklegate/tacklegate/adapters/llm"
	"github.com/tacklegate/tacklegate/config"
	"github.com/tacklegate/tacklegate/gateway"
	"github.com/tacklegate/tacklegate/gateway/assistant"
	"github.com/tacklegate/tacklegate/rental"
)

// knowledgeSyncEvery is how often an instance checks whether another one
// changed the knowledge base.
const knowledgeSyncEvery = 15 * time.Second

// assistant builds the AI customer service over the shop's catalog and the
// knowledge base (loaded separately, see gateway.LoadKnowledge), with the
// language model when TACKLEGATE_LLM_* name one, and the Desk the message
// bridge asks for each customer message (TACKLEGATE_ASSISTANT_MODE).
func (a *app) assistant(cfg config.Config, rent *gateway.Rental, logger *slog.Logger) (*assistant.Assistant, *assistant.Desk, error) {
	const op = "app.assistant"
	mode, err := assistant.ParseMode(cfg.AssistantMode)
	if err != nil {
		return nil, nil, err
	}
	opts := assistant.Options{
		Catalog:   assistant.ShopCatalog{Items: a.db, Shop: rent.Shop()},
		Facts:     a.db,
		PublicURL: cfg.PublicURL,
		Logger:    logger,
		Now:       a.now,
	}
	if cfg.LLM.Enabled() {
		model, err := llm.New(llm.Config{BaseURL: cfg.LLM.BaseURL, APIKey: cfg.LLM.APIKey, Model: cfg.LLM.Model,
			VisionModel: cfg.LLM.VisionModel, Timeout: cfg.LLM.Timeout})
		if err != nil {
			return nil, nil, rental.Wrap(op, rental.KindInvalid, "the language model cannot be used (TACKLEGATE_LLM_*)", err)
		}
		opts.Model = model // only a real client: a nil *llm.Client in the interface would not be nil
		logger.Info("the assistant phrases answers with a language model", "model", cfg.LLM.Model, "vision_model", cfg.LLM.VisionModel, "mode", mode)
	} else {
		logger.Info("the assistant answers from the knowledge base and catalog only: no language model is configured (TACKLEGATE_LLM_BASE_URL, TACKLEGATE_LLM_MODEL)", "mode", mode)
	}
	kb, err := assistant.New(nil, opts)
	if err != nil {
		return nil, nil, err
	}
	desk := &assistant.Desk{Assistant: kb, Policy: assistant.Policy{Mode: mode}, Records: gateway.AnswerRecords{DB: a.db},
		Logger: logger, Now: a.now}
	return kb, desk, nil
}
