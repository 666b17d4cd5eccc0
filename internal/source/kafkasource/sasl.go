package kafkasource

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
)

// SASL mechanism names accepted in SASL.Mechanism.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// SASL configures SASL authentication. The zero value disables it.
type SASL struct {
	// Mechanism is "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	// User and Password are the credentials; Password is never logged.
	User     string
	Password string
}

// mechanism builds the kafka-go SASL mechanism, nil when SASL is off.
//
// SCRAM is implemented here (RFC 5802) rather than with kafka-go's
// sasl/scram package, which needs github.com/xdg-go/scram, a module this
// project does not depend on.
func (s SASL) mechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		return nil, nil
	case MechanismPlain:
		return plain.Mechanism{Username: s.User, Password: s.Password}, nil
	case MechanismSCRAMSHA256:
		return &scram{name: MechanismSCRAMSHA256, hash: sha256.New, user: s.User, pass: s.Password}, nil
	case MechanismSCRAMSHA512:
		return &scram{name: MechanismSCRAMSHA512, hash: sha512.New, user: s.User, pass: s.Password}, nil
	default:
		return nil, fmt.Errorf("sasl.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", s.Mechanism)
	}
}

// scram is a SCRAM client mechanism; every Start begins a new conversation.
type scram struct {
	name       string
	hash       func() hash.Hash
	user, pass string
}

func (m *scram) Name() string { return m.name }

func (m *scram) Start(context.Context) (sasl.StateMachine, []byte, error) {
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("scram: nonce: %w", err)
	}
	user := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(m.user)
	c := &scramConversation{m: m, clientNonce: base64.RawStdEncoding.EncodeToString(nonce)}
	c.clientFirstBare = "n=" + user + ",r=" + c.clientNonce
	return c, []byte("n,," + c.clientFirstBare), nil
}

type scramConversation struct {
	m               *scram
	clientNonce     string
	clientFirstBare string
	serverSignature []byte
	step            int
}

var errSCRAMProtocol = errors.New("scram: unexpected server message")

func (c *scramConversation) Next(_ context.Context, challenge []byte) (bool, []byte, error) {
	c.step++
	switch c.step {
	case 1:
		return c.clientFinal(string(challenge))
	case 2:
		return c.verifyServerFinal(string(challenge))
	default:
		return false, nil, errSCRAMProtocol
	}
}

func scramAttrs(msg string) map[byte]string {
	attrs := make(map[byte]string, 4)
	for _, kv := range strings.Split(msg, ",") {
		if len(kv) >= 2 && kv[1] == '=' {
			attrs[kv[0]] = kv[2:]
		}
	}
	return attrs
}

func (c *scramConversation) clientFinal(serverFirst string) (bool, []byte, error) {
	attrs := scramAttrs(serverFirst)
	if e, ok := attrs['e']; ok {
		return false, nil, fmt.Errorf("scram: server error %q", e)
	}
	nonce, salt64, iter64 := attrs['r'], attrs['s'], attrs['i']
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) {
		return false, nil, fmt.Errorf("%w: bad nonce", errSCRAMProtocol)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return false, nil, fmt.Errorf("%w: bad salt", errSCRAMProtocol)
	}
	iters, err := strconv.Atoi(iter64)
	if err != nil || iters < 1 {
		return false, nil, fmt.Errorf("%w: bad iteration count", errSCRAMProtocol)
	}
	h := c.m.hash
	salted, err := pbkdf2.Key(h, c.m.pass, salt, iters, h().Size())
	if err != nil {
		return false, nil, fmt.Errorf("scram: derive key: %w", err)
	}
	clientKey := hmacSum(h, salted, "Client Key")
	stored := h()
	stored.Write(clientKey)
	storedKey := stored.Sum(nil)
	withoutProof := "c=biws,r=" + nonce
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	proof := hmacSum(h, storedKey, authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSignature = hmacSum(h, hmacSum(h, salted, "Server Key"), authMessage)
	return false, []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

func (c *scramConversation) verifyServerFinal(serverFinal string) (bool, []byte, error) {
	attrs := scramAttrs(serverFinal)
	if e, ok := attrs['e']; ok {
		return false, nil, fmt.Errorf("scram: server error %q", e)
	}
	got, err := base64.StdEncoding.DecodeString(attrs['v'])
	if err != nil || subtle.ConstantTimeCompare(got, c.serverSignature) != 1 {
		return false, nil, errors.New("scram: server signature does not verify")
	}
	return true, nil, nil
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	mac := hmac.New(h, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}
