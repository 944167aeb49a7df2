package rolesanywhere

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"
)

// The helper reads ENCRYPTED PRIVATE KEY files that use PBES2 with PBKDF2
// (HMAC-SHA-1/256/384/512) or scrypt, and AES-CBC. pemutil only knows the
// SHA-1/SHA-256 PRFs and no scrypt, so this small decoder covers the full set.
var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}

	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}

	oidAES128CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// errBadPKCS8Password is what a wrong password looks like after decryption.
var errBadPKCS8Password = errors.New("decrypt private key: wrong password or corrupt key")

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

type scryptParams struct {
	Salt            []byte
	CostParameter   int
	BlockSize       int
	Parallelization int
	KeyLength       int `asn1:"optional"`
}

// decryptPKCS8 returns the PKCS#8 PrivateKeyInfo DER inside an
// EncryptedPrivateKeyInfo.
func decryptPKCS8(der, password []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("decrypt private key: malformed EncryptedPrivateKeyInfo")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("decrypt private key: unsupported scheme %v (only PBES2)", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("decrypt private key: malformed PBES2 parameters: %w", err)
	}

	var keyLen int
	switch {
	case params.EncryptionScheme.Algorithm.Equal(oidAES128CBC):
		keyLen = 16
	case params.EncryptionScheme.Algorithm.Equal(oidAES192CBC):
		keyLen = 24
	case params.EncryptionScheme.Algorithm.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, fmt.Errorf("decrypt private key: unsupported cipher %v (only AES-CBC)", params.EncryptionScheme.Algorithm)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
		return nil, errors.New("decrypt private key: malformed AES IV")
	}

	key, err := deriveKey(params.KeyDerivationFunc, password, keyLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("decrypt private key: %w", err)
	}
	data := append([]byte(nil), info.EncryptedData...)
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, errors.New("decrypt private key: ciphertext is not a whole number of blocks")
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(data, data)
	pad := int(data[len(data)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errBadPKCS8Password
	}
	for _, b := range data[len(data)-pad:] {
		if int(b) != pad {
			return nil, errBadPKCS8Password
		}
	}
	return data[:len(data)-pad], nil
}

func deriveKey(kdf pkix.AlgorithmIdentifier, password []byte, keyLen int) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("decrypt private key: malformed PBKDF2 parameters: %w", err)
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, errors.New("decrypt private key: PBKDF2 key length does not fit the cipher")
		}
		var h func() hash.Hash
		switch {
		case len(p.PRF.Algorithm) == 0 || p.PRF.Algorithm.Equal(oidHMACSHA1):
			h = sha1.New
		case p.PRF.Algorithm.Equal(oidHMACSHA256):
			h = sha256.New
		case p.PRF.Algorithm.Equal(oidHMACSHA384):
			h = sha512.New384
		case p.PRF.Algorithm.Equal(oidHMACSHA512):
			h = sha512.New
		default:
			return nil, fmt.Errorf("decrypt private key: unsupported PBKDF2 PRF %v", p.PRF.Algorithm)
		}
		key, err := pbkdf2.Key(h, string(password), p.Salt, p.Iterations, keyLen)
		if err != nil {
			return nil, fmt.Errorf("decrypt private key: %w", err)
		}
		return key, nil
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("decrypt private key: malformed scrypt parameters: %w", err)
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, errors.New("decrypt private key: scrypt key length does not fit the cipher")
		}
		key, err := scrypt.Key(password, p.Salt, p.CostParameter, p.BlockSize, p.Parallelization, keyLen)
		if err != nil {
			return nil, fmt.Errorf("decrypt private key: %w", err)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("decrypt private key: unsupported key derivation %v", kdf.Algorithm)
	}
}
